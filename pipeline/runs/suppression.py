"""Suppression of erased contacts (right to erasure), below the run steps: staging turns their events away, publish
removes the rows that carry their email and remembers the hashes.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pandas as pd
from sqlalchemy import Connection, func, or_, select

from pipeline.settings import Settings
from pipeline.warehouse import tables as t
from pipeline.warehouse.rows import insert_frame

ERASED_RAW = "[erased: right to erasure]"


ERASED_REASON = "erased contact (right to erasure)"


EMAIL_IN_TEXT = r"([A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,})"


VALID_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def value_hash(value: str, settings: Settings) -> str:
    """Salted SHA-256 of a normalised email or visitor id: what the suppression list keeps instead of it."""
    return hashlib.sha256(f"{settings.suppression_salt}\x1f{value}".encode()).hexdigest()


def _hashes(values: pd.Series, settings: Settings) -> pd.Series:
    unique = values.dropna().unique()
    mapping = {v: value_hash(v, settings) for v in unique}
    return values.map(mapping)


def suppressed_hashes(conn: Connection) -> set[str]:
    return set(conn.execute(select(t.suppressions.c.value_hash)).scalars())


def erased_mask(events: pd.DataFrame, hashes: set[str], settings: Settings) -> np.ndarray:
    """Which staged events belong to an erased contact: its email, or its device's events that carry no other email."""
    if not hashes or events.empty:
        return np.zeros(len(events), dtype=bool)
    by_email = _hashes(events["email"], settings).isin(hashes)
    by_visitor = _hashes(events["anonymous_id"], settings).isin(hashes) & (events["email"].isna() | by_email)
    return (by_email | by_visitor).to_numpy(dtype=bool)


def redact_quarantine(quarantine: pd.DataFrame, hashes: set[str], settings: Settings) -> pd.DataFrame:
    """Quarantine rows whose text or email names an erased contact keep their place, not their text."""
    if not hashes or quarantine.empty:
        return quarantine
    quarantine = quarantine.reset_index(drop=True)
    mentioned = quarantine["raw"].str.lower().str.extractall(EMAIL_IN_TEXT)[0]
    named = set(mentioned[_hashes(mentioned, settings).isin(hashes)].index.get_level_values(0))
    named |= set(quarantine.index[_hashes(quarantine["email"], settings).isin(hashes)])
    rows = quarantine.index.isin(list(named))
    quarantine.loc[rows, ["raw", "email"]] = [ERASED_RAW, None]
    return quarantine


def erase_in_transaction(conn: Connection, email: str, visitors: list[str], settings: Settings, now) -> None:
    """Inside publish: drop the rows that carry the email outside the recomputed tables; remember the hashes."""
    pattern = "%" + email.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    q = t.quarantined_events
    conn.execute(q.delete().where(or_(q.c.email == email, func.lower(q.c.raw).like(pattern, escape="\\"))))
    conn.execute(t.contacts_history.delete().where(t.contacts_history.c.email == email))
    known = suppressed_hashes(conn)
    rows = [(value_hash(email, settings), "email")] + [(value_hash(v, settings), "anonymous_id") for v in visitors]
    fresh = pd.DataFrame([r for r in rows if r[0] not in known], columns=["value_hash", "kind"]).drop_duplicates("value_hash")
    insert_frame(conn, t.suppressions, fresh.assign(created_at=now))
