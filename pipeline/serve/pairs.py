"""Filter mode of the reader in SQL: the matching (contact, session) pairs of a query, counted, located and scanned.

A pair matches as SPEC section 11 says. Requests without conversion filters read `contact_sessions`; with
conversion filters they read `contact_conversions` (one row per contact conversion, carrying its pair's
key, roles and attributes), so both the filters and the pair order come from one index. Pairs are
ordered by (session timestamp, session id, email). Three questions are asked of them:

- how many match (`total_records`): from `reader_pair_counts` when the request has a touch scope and at
  most one filter (see `counted_shape`), else counted;
- which pair sits at position `offset`: by walking the days of `reader_pair_counts` and skipping inside
  one day, else by skipping over the index;
- the pairs from there on, each with whether an earlier pair of its contact matches (then the contact
  was already returned), probed on the per-contact index.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, time

from sqlalchemy import Connection, and_, exists, false, func, literal_column, or_, select, tuple_

from pipeline.serve.query import ContactsQuery, window_conditions
from pipeline.warehouse import tables as t

ROLE_COLUMNS = {"first": "is_first", "converting": "is_converting", "assist": "is_assist", "after": "is_after"}
BIGINT_MAX = 2**63 - 1  # offsets beyond any pair count are clamped before they reach SQL
ALIASES = {  # made once: building an alias per request costs more than the page's SQL
    (table.name, name): table.alias(name) for table in (t.contact_sessions, t.contact_conversions) for name in ("p", "earlier")
}


def shape_of(query: ContactsQuery) -> tuple:
    """What a filter-mode query asks for apart from its offset: the key of its cached facts."""
    return (query.touch_scope, tuple(sorted(query.session_filters.items())), tuple(sorted(query.conversion_filters.items())),
            query.start, query.end)


def _whole_day(bound: datetime | None) -> bool:
    return bound is None or bound.time() == time()


def counted_shape(query: ContactsQuery) -> tuple[str, str] | None:
    """(dim, value) of the reader_pair_counts rows that answer the query, if any: a touch scope with at most one
    session filter over whole days, or with one conversion filter and no window (the window would also bound
    the conversion's time, which the counts do not keep)."""
    filters = {**query.session_filters, **query.conversion_filters}
    if len(filters) > 1 or not (_whole_day(query.start) and _whole_day(query.end)):
        return None
    if query.conversion_filters and (query.start is not None or query.end is not None):
        return None
    return next(iter(filters.items()), ("", ""))


def _by_flag(query: ContactsQuery) -> bool:
    """One conversion filter and no window: the filter's first-in-pair flag picks one row per pair."""
    return len(query.conversion_filters) == 1 and query.start is None and query.end is None


def source_and_conditions(query: ContactsQuery, name: str = "p", *, seek: bool = True):
    """The table a query reads (aliased) and the WHERE conditions of a matching row there.

    With `seek` false (SQLite only) the session filters and the role are written `+p.column`, which no
    index can seek: the planner then reads the covering order index in one pass (see `count_pairs`).
    """
    table = ALIASES[("contact_conversions" if query.conversion_filters else "contact_sessions", name)]
    column = (lambda c: table.c[c]) if seek else (lambda c: literal_column(f"+{table.name}.{c}", table.c[c].type))
    conditions = [column(c) == value for c, value in query.session_filters.items()]
    if query.touch_scope != "any":
        role = ROLE_COLUMNS[query.touch_scope]
        conditions.append(table.c[role].is_(True) if seek else column(role) == 1)
    conditions += window_conditions(table.c.session_timestamp, query)
    if query.conversion_filters:
        conditions += [table.c[c] == value for c, value in query.conversion_filters.items()]
        conditions += window_conditions(table.c.conversion_timestamp, query)
        if _by_flag(query):
            [only] = query.conversion_filters
            conditions.append(table.c[t.CONVERSION_FILTERS[only]].is_(True))
    return table, conditions


def _order(conn: Connection, table) -> tuple:
    """The scan order (session timestamp, session id, email), emails compared by code point on every backend."""
    email = table.c.email.collate("C") if conn.dialect.name == "postgresql" else table.c.email
    return table.c.session_timestamp, table.c.session_id, email


def _distinct(query: ContactsQuery) -> bool:
    """Whether a pair may appear on several rows (two matching conversions of a contact in one session)."""
    return bool(query.conversion_filters) and not _by_flag(query)


# --- how many -------------------------------------------------------------------------------------------


def _counts_where(query: ContactsQuery, dim: str, value: str) -> list:
    counts = t.reader_pair_counts
    where = [counts.c.dim == dim, counts.c.value == value, counts.c.scope == query.touch_scope]
    if query.start is not None:
        where.append(counts.c.day >= query.start.date())
    if query.end is not None:
        where.append(counts.c.day < query.end.date())
    return where


def count_pairs(conn: Connection, query: ContactsQuery) -> int:
    """total_records: the matching pairs."""
    counted = counted_shape(query)
    if counted is not None:
        total = select(func.coalesce(func.sum(t.reader_pair_counts.c.pairs), 0)).where(*_counts_where(query, *counted))
        return int(conn.execute(total).scalar_one())
    # several session filters on SQLite: seeking the most selective one's index and looking each pair up in the
    # table costs ~110 ms at 100k contacts; one pass over the covering order index ~30 ms (PostgreSQL scans in parallel)
    several = conn.dialect.name == "sqlite" and len(query.session_filters) > 1 and not query.conversion_filters
    table, conditions = source_and_conditions(query, seek=not several)
    if _distinct(query):
        pairs = select(table.c.session_id, table.c.email).where(and_(True, *conditions)).distinct().subquery()
        return conn.execute(select(func.count()).select_from(pairs)).scalar_one()
    return conn.execute(select(func.count()).select_from(table).where(and_(True, *conditions))).scalar_one()


# --- where an offset starts -----------------------------------------------------------------------------


def _key_at(conn: Connection, query: ContactsQuery, offset: int, since: datetime | None = None) -> tuple | None:
    """The key of the matching pair `offset` pairs after the first one at or after `since`, by skipping the index."""
    table, conditions = source_and_conditions(query)
    order = _order(conn, table)
    if since is not None:
        conditions.append(table.c.session_timestamp >= since)
    keys = select(*order).where(and_(True, *conditions))
    if _distinct(query):
        keys = keys.distinct()
    row = conn.execute(keys.order_by(*order).offset(min(offset, BIGINT_MAX)).limit(1)).first()
    return None if row is None else tuple(row)


def locate(conn: Connection, query: ContactsQuery, offset: int) -> tuple | None:
    """The key of the pair at position `offset` (0-based) of the matching pairs, or None past the last one."""
    counted = counted_shape(query)
    if counted is None or offset == 0:
        return _key_at(conn, query, offset)
    days = select(t.reader_pair_counts.c.day, t.reader_pair_counts.c.pairs).where(*_counts_where(query, *counted))
    before = 0
    for day, pairs in conn.execute(days.order_by(t.reader_pair_counts.c.day)):
        if offset < before + pairs:
            return _key_at(conn, query, offset - before, since=datetime.combine(day, time()))
        before += pairs
    return None


# --- the pairs from there on ----------------------------------------------------------------------------


def _seen_before(query: ContactsQuery, row):
    """True when an earlier matching pair of the same contact exists (so this pair is not its first).

    Two shapes need no probe: with touch scope `first` a contact has one matching pair at most, and
    with no filter and no start bound a contact's first matching pair is its first session.
    """
    if query.touch_scope == "first":
        return false()
    if query.touch_scope == "any" and not query.session_filters and not query.conversion_filters and query.start is None:
        return row.c.is_first.is_(False)
    earlier, conditions = source_and_conditions(query, "earlier")
    before = or_(
        earlier.c.session_timestamp < row.c.session_timestamp,
        and_(earlier.c.session_timestamp == row.c.session_timestamp, earlier.c.session_id < row.c.session_id),
    )
    return exists(select(earlier.c.session_id).where(earlier.c.email == row.c.email, before, *conditions))


def scan_pairs(conn: Connection, query: ContactsQuery, start: tuple | None) -> Iterator[tuple]:
    """(key, contact, seen) of each matching pair in order from `start` (inclusive; None: the first pair).

    The scan goes on by key in growing batches (keyset paging), so a page costs about the pairs it reads.
    """
    table, conditions = source_and_conditions(query)
    order = _order(conn, table)
    scan = select(*order, _seen_before(query, table).label("seen")).where(and_(True, *conditions)).order_by(*order)
    bound, inclusive, batch, last = start, True, 64, None
    while True:
        after = [] if bound is None else [tuple_(*order) >= tuple(bound) if inclusive else tuple_(*order) > tuple(bound)]
        rows = conn.execute(scan.where(*after).limit(batch)).fetchall()
        for row in rows:
            key = tuple(row[:3])
            if key != last:  # a pair with two matching conversions comes once
                yield key, row[2], bool(row[3])
            last = key
        if len(rows) < batch:
            return
        bound, inclusive, batch = last, False, min(batch * 2, 8192)
