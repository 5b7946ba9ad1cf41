"""Suppression of erased contacts (right to erasure), below the run steps: staging turns their events away, publish
removes the rows that carry their email and remembers the hashes.
"""

from __future__ import annotations

import hashlib
import re

import pandas as pd
from sqlalchemy import Connection, func, or_, select

from pipeline.contract.staging import ORIGIN, StagedLines
from pipeline.settings import Settings
from pipeline.warehouse import tables as t
from pipeline.warehouse.rows import insert_frame, read_table, read_where_in

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


def erase_suppressed(staged: StagedLines, hashes: set[str], settings: Settings) -> StagedLines:
    """Staged events of erased contacts become redacted quarantine rows; quarantine text naming them is redacted."""
    if not hashes:
        return staged
    events = staged.events
    by_email = _hashes(events["email"], settings).isin(hashes)
    by_visitor = _hashes(events["anonymous_id"], settings).isin(hashes) & (events["email"].isna() | by_email)
    erased = (by_email | by_visitor).to_numpy()
    moved = events.loc[erased, ORIGIN].assign(raw=ERASED_RAW, reason=ERASED_REASON, event_id=None, email=None)
    quarantine = staged.quarantine.copy()
    mentioned = quarantine["raw"].str.lower().str.extractall(EMAIL_IN_TEXT)[0]
    named = set(mentioned[_hashes(mentioned, settings).isin(hashes)].index.get_level_values(0))
    named |= set(quarantine.index[_hashes(quarantine["email"], settings).isin(hashes)])
    rows = quarantine.index.isin(list(named))
    quarantine.loc[rows, ["raw", "email"]] = [ERASED_RAW, None]
    quarantine = pd.concat([quarantine, moved[quarantine.columns]], ignore_index=True)
    return StagedLines(events[~erased].reset_index(drop=True), quarantine, staged.duplicates)


def contact_events(conn: Connection, email: str, visitors: list[str]) -> pd.DataFrame:
    """The events to erase: the contact's conversions and everything of its own devices but others' conversions."""
    columns = ["event_id", "anonymous_id", "timestamp", "email"]
    own = read_where_in(conn, t.events, "anonymous_id", visitors, columns)
    own = own[own["email"].isna() | (own["email"] == email)]
    carried = read_table(conn, t.events, t.events.c.email == email, columns)
    return pd.concat([own, carried], ignore_index=True).drop_duplicates("event_id")


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
