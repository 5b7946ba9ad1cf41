"""The reader's count table, kept exact by publish: matching pairs per UTC day, touch scope and single filter.

`reader_pair_counts` holds, for every (dim, value, scope, day), the number of (contact, session) pairs of
that day whose session holds the scope's role and has that value (dim `""`: any value). The reader sums it
for `total_records` of requests with a touch scope and at most one session filter over whole days, and
walks its days to jump to a deep offset. `reader_counted_pairs` keeps each contact's pairs as they were
counted, so that publish takes a touched contact's old pairs out and puts its new ones in: the work
follows the contacts a run touches, not the size of the history (SPEC section 9).
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd
from sqlalchemy import Connection, bindparam, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from pipeline.warehouse import tables as t
from pipeline.warehouse.rows import delete_where_in, insert_frame, read_where_in

SCOPES = {"any": None, "first": "is_first", "converting": "is_converting", "assist": "is_assist", "after": "is_after"}
DIMS = ("", *t.SESSION_FILTERS)
LEDGER_COLUMNS = [c.name for c in t.reader_counted_pairs.columns]
COUNT_KEY = ["dim", "value", "scope", "day"]


def pair_groups(pairs: pd.DataFrame) -> pd.Series:
    """Pairs per (dim, value, scope, day) of a frame shaped like reader_counted_pairs."""
    if pairs.empty:
        return pd.Series(dtype="int64", index=pd.MultiIndex.from_tuples([], names=COUNT_KEY))
    long = pairs.assign(**{"": ""}).melt(id_vars=["day", *t.ROLES], value_vars=list(DIMS), var_name="dim", value_name="value")
    parts = []
    for scope, role in SCOPES.items():
        held = long if role is None else long[long[role].astype(bool).to_numpy()]
        parts.append(held.groupby(["dim", "value", "day"], sort=False).size().rename(scope))
    counts = pd.concat(parts, axis=1).fillna(0).astype("int64").rename_axis(columns="scope").stack()
    counts = counts.reorder_levels(["dim", "value", "scope", "day"])
    return counts[counts != 0]


def _current_pairs(conn: Connection, emails: list[str]) -> pd.DataFrame:
    """The touched contacts' pairs as published now, shaped like reader_counted_pairs."""
    columns = ["email", "session_id", "session_timestamp", *t.ROLES, *t.SESSION_FILTERS]
    pairs = read_where_in(conn, t.contact_sessions, "email", emails, columns)
    pairs["day"] = pairs["session_timestamp"].dt.date
    return pairs[LEDGER_COLUMNS]


def _apply(conn: Connection, delta: pd.Series) -> None:
    """Add the per-group differences to the counts and drop groups that reached zero."""
    if delta.empty:
        return
    rows = delta.rename("pairs").reset_index()
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    counts = t.reader_pair_counts
    upsert = insert(counts).on_conflict_do_update(index_elements=COUNT_KEY, set_={"pairs": counts.c.pairs + insert(counts).excluded.pairs})
    conn.execute(upsert, rows.to_dict("records"))
    keys = rows[rows["pairs"] < 0][COUNT_KEY]
    if len(keys):
        zero = counts.delete().where(*(counts.c[k] == bindparam(f"k_{k}") for k in COUNT_KEY), counts.c.pairs == 0)
        conn.execute(zero, keys.rename(columns=lambda k: f"k_{k}").to_dict("records"))


def refresh_reader_tables(conn: Connection, touched_emails: Iterable[str]) -> dict:
    """Inside publish, once the touched contacts' new rows are in: move their counted pairs from old to new."""
    emails = list(dict.fromkeys(e for e in touched_emails if e is not None))
    old = read_where_in(conn, t.reader_counted_pairs, "email", emails)
    new = _current_pairs(conn, emails)
    delta = pair_groups(new).sub(pair_groups(old), fill_value=0).astype("int64")
    _apply(conn, delta[delta != 0])
    delete_where_in(conn, t.reader_counted_pairs, "email", emails)
    insert_frame(conn, t.reader_counted_pairs, new)
    return {"pairs_counted": len(new), "count_groups_changed": int((delta != 0).sum())}


def recount(conn: Connection) -> pd.Series:
    """The counts recomputed from contact_sessions alone (what reader_pair_counts must equal; for tests and checks)."""
    emails = conn.execute(select(t.contact_sessions.c.email).distinct()).scalars().all()
    return pair_groups(_current_pairs(conn, emails)).sort_index()

