"""The reader's count table, kept exact by publish: matching pairs per UTC day, touch scope and single filter.

`reader_pair_counts` holds, for every (dim, value, scope, day), the number of (contact, session) pairs
whose session started that day, holds the scope's role and has that value: dim `""` is any pair, a
session attribute (`source` … `landing_page`) the session's value, a conversion column
(`conversion_type`, `conversion_id`, `conversion_page`) a value of one of the contact's conversions in
that session (a pair counts once per value). The reader sums it for `total_records` of requests with a
touch scope and at most one filter, and walks its days to jump to a deep offset.

Publish replaces a touched contact's rows, so the old rows are gone when the counts are brought up to
date; `reader_counted_pairs` and `reader_counted_conversions` keep what was counted, contact by contact,
so the counts lose a touched contact's old pairs and gain its new ones: the work follows the contacts a
run touches, not the size of the history (SPEC section 9).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from sqlalchemy import Column, Connection, Date, Integer, MetaData, Table, Text, bindparam, cast, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from pipeline.warehouse import tables as t

SCOPES = {"any": None, "first": "is_first", "converting": "is_converting", "assist": "is_assist", "after": "is_after"}
COUNT_KEY = ["dim", "value", "scope", "day"]
LEDGERS = {t.reader_counted_pairs: t.contact_sessions, t.reader_counted_conversions: t.contact_conversions}  # ledger → what it mirrors


def _touched_table() -> Table:
    """The touched emails, as a temporary table the statements below join to (no IN lists of 100,000 emails)."""
    email = Column("email", Text, primary_key=True)
    return Table("reader_touched", MetaData(), email, prefixes=["TEMPORARY"], postgresql_on_commit="DROP")


def _day(conn: Connection, column):
    """The UTC date of a timestamp column, as the Date type stores it on each backend."""
    return func.date(column) if conn.dialect.name == "sqlite" else cast(column, Date)


def _groups(conn: Connection, pairs: Table, conversions: Table, touched: Table | None) -> dict:
    """Pairs per (dim, value, scope, day) in two tables shaped like the ledgers (or the published tables they
    mirror), for the touched contacts only when `touched` is given."""

    def part(table: Table, dim: str, where: list = ()):
        day = (table.c.day if "day" in table.c else _day(conn, table.c.session_timestamp)).label("day")
        value = [table.c[dim].label("value")] if dim else []
        roles = [func.sum(cast(table.c[role], Integer)).label(scope) for scope, role in SCOPES.items() if role]
        query = select(*value, day, func.count().label("any"), *roles)
        if touched is not None:  # IN (subquery): the planner walks the touched emails and seeks each contact's rows
            query = query.where(table.c.email.in_(select(touched.c.email).scalar_subquery()))
        return dim, query.where(*where).group_by(*value, day)

    parts = [part(pairs, dim) for dim in ("", *t.SESSION_FILTERS)]
    parts += [
        part(conversions, dim, [conversions.c[flag].is_(True), conversions.c[dim].is_not(None)])
        for dim, flag in t.CONVERSION_FILTERS.items()
    ]
    counted: dict = {}
    for dim, query in parts:
        for row in conn.execute(query).mappings():
            day = date.fromisoformat(row["day"]) if isinstance(row["day"], str) else row["day"]
            for scope in SCOPES:
                if row[scope]:
                    key = (dim, row["value"] if dim else "", scope, day)
                    counted[key] = counted.get(key, 0) + int(row[scope])
    return counted


def _copy_into_ledgers(conn: Connection, touched: Table) -> int:
    """Replace the touched contacts' ledger rows by their rows as published now; returns the pairs counted."""
    copied = 0
    for ledger, published in LEDGERS.items():
        conn.execute(ledger.delete().where(ledger.c.email.in_(select(touched.c.email).scalar_subquery())))
        columns = [c.name for c in ledger.columns]
        values = [_day(conn, published.c.session_timestamp) if name == "day" else published.c[name] for name in columns]
        rows = select(*values).where(published.c.email.in_(select(touched.c.email).scalar_subquery()))
        result = conn.execute(ledger.insert().from_select(columns, rows))
        copied += result.rowcount if ledger is t.reader_counted_pairs else 0
    return copied


def _apply(conn: Connection, delta: dict) -> None:
    """Add the per-group differences to the counts and drop groups that reached zero."""
    rows = [dict(zip(COUNT_KEY, key), pairs=n) for key, n in delta.items() if n]
    if not rows:
        return
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    counts = t.reader_pair_counts
    added = counts.c.pairs + insert(counts).excluded.pairs
    upsert = insert(counts).on_conflict_do_update(index_elements=COUNT_KEY, set_={"pairs": added})
    conn.execute(upsert, rows)
    fallen = [{f"k_{k}": row[k] for k in COUNT_KEY} for row in rows if row["pairs"] < 0]
    if fallen:
        zero = counts.delete().where(*(counts.c[k] == bindparam(f"k_{k}") for k in COUNT_KEY), counts.c.pairs == 0)
        conn.execute(zero, fallen)


def refresh_reader_tables(conn: Connection, touched_emails: Iterable[str]) -> dict:
    """Inside publish, once the touched contacts' new rows are in: move their counted pairs from old to new."""
    emails = list(dict.fromkeys(e for e in touched_emails if e is not None))
    touched = _touched_table()
    touched.drop(conn, checkfirst=True)  # a publish that failed on this connection may have left it (SQLite)
    touched.create(conn)
    if emails:
        conn.execute(touched.insert(), [{"email": e} for e in emails])
    ledgers = list(LEDGERS)
    old = _groups(conn, *ledgers, touched)
    copied = _copy_into_ledgers(conn, touched)
    new = _groups(conn, *ledgers, touched)
    delta = {key: new.get(key, 0) - old.get(key, 0) for key in old.keys() | new.keys()}
    _apply(conn, delta)
    if conn.dialect.name == "sqlite":
        touched.drop(conn)
    _planner_statistics(conn)
    return {"pairs_counted": copied, "count_groups_changed": sum(1 for n in delta.values() if n)}


def _planner_statistics(conn: Connection) -> None:
    """Sampled statistics of the reader's precomputed tables, so the planner probes a contact's conversions by
    email rather than by conversion type (without them SQLite takes the two for equally selective)."""
    tables = (t.contact_conversions, t.reader_pair_counts)
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("PRAGMA analysis_limit=1000")
        for table in tables:
            conn.exec_driver_sql(f"ANALYZE {table.name}")
    else:
        conn.exec_driver_sql(f"ANALYZE {', '.join(table.name for table in tables)}")


def recount(conn: Connection) -> dict:
    """The counts recomputed from contact_sessions and contact_conversions alone: what reader_pair_counts must hold."""
    return _groups(conn, *LEDGERS.values(), None)
