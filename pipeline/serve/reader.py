"""The reader: /contacts queries answered in SQL from `contact_sessions` and `contacts` (SPEC section 11).

Filter mode never loads contacts into pandas: the database numbers the matching (contact, session) pairs
in (session timestamp, session id, email) order, takes each contact's first pair, and returns the next
page of contacts after `offset`. Only the ≤ 50 summaries of the page are read.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone

from sqlalchemy import Connection, Engine, and_, bindparam, exists, func, make_url, or_, select, tuple_
from sqlalchemy.exc import OperationalError, ProgrammingError

from pipeline.serve.query import ContactsQuery, RequestError, parse_request  # noqa: F401 - RequestError re-exported
from pipeline.settings import Settings
from pipeline.warehouse import tables as t
from pipeline.warehouse.engines import WarehouseError, read_only_engine

PAGE_SIZE = 50
NO_MATCH = {"message": "No contacts found for the given parameters."}
BIGINT_MAX = 2**63 - 1  # offsets beyond any pair count are clamped before they reach SQL
ROLE_COLUMNS = {"first": "is_first", "converting": "is_converting", "assist": "is_assist", "after": "is_after"}


def matching_conditions(cs, query: ContactsQuery) -> list:
    """WHERE conditions on a contact_sessions alias for a matching pair, as SPEC section 11 defines it.

    Conversion filters become a correlated EXISTS: cheap per row while scanning in order.
    """
    conditions = session_conditions(cs, query)
    if query.conversion_filters:
        conv = t.conversions.alias("conv")
        same_pair = [conv.c.email == cs.c.email, conv.c.session_id == cs.c.session_id]
        conditions.append(exists(select(conv.c.event_id).where(*same_pair, *conversion_conditions(conv, query))))
    return conditions


def session_conditions(cs, query: ContactsQuery) -> list:
    """The pair's own conditions: session filters, touch scope and the date window on the session."""
    conditions = [cs.c[name] == value for name, value in query.session_filters.items()]
    if query.touch_scope != "any":
        conditions.append(cs.c[ROLE_COLUMNS[query.touch_scope]].is_(True))
    return conditions + _window(cs.c.session_timestamp, query)


def conversion_conditions(conv, query: ContactsQuery) -> list:
    """What one conversion of the pair must match: every conversion filter, and the date window."""
    return [conv.c[name] == value for name, value in query.conversion_filters.items()] + _window(conv.c.timestamp, query)


def count_pairs(conn: Connection, query: ContactsQuery) -> int:
    """total_records: the matching pairs. With conversion filters the count is driven from the matching
    conversions' own index, joined to their pairs by key (2-4× faster than a row-value IN on SQLite)."""
    cs = t.contact_sessions.alias("cs")
    pairs = cs
    if query.conversion_filters:
        conv = t.conversions.alias("conv")
        matched = select(conv.c.email, conv.c.session_id).where(*conversion_conditions(conv, query)).distinct().subquery("matched")
        pairs = cs.join(matched, and_(cs.c.email == matched.c.email, cs.c.session_id == matched.c.session_id))
    return conn.execute(select(func.count()).select_from(pairs).where(and_(True, *session_conditions(cs, query)))).scalar_one()


def _window(column, query: ContactsQuery) -> list:
    bounds = []
    if query.start is not None:
        bounds.append(column >= query.start)
    if query.end is not None:
        bounds.append(column < query.end)
    return bounds


def _order(conn: Connection, cs) -> tuple:
    """The scan order (session timestamp, session id, email), emails compared by code point on every backend."""
    email = cs.c.email.collate("C") if conn.dialect.name == "postgresql" else cs.c.email
    return cs.c.session_timestamp, cs.c.session_id, email


def _first_pair_flag(cs, query: ContactsQuery):
    """True when an earlier matching pair of the same contact exists (so this pair is not its first)."""
    earlier = t.contact_sessions.alias("earlier")
    before = or_(
        earlier.c.session_timestamp < cs.c.session_timestamp,
        and_(earlier.c.session_timestamp == cs.c.session_timestamp, earlier.c.session_id < cs.c.session_id),
    )
    return exists(select(earlier.c.session_id).where(earlier.c.email == cs.c.email, before, *matching_conditions(earlier, query)))


def scan_pairs(conn: Connection, query: ContactsQuery):
    """Matching pairs in order from `offset`, each with its key and whether it is its contact's first pair.

    The offset is skipped once with a key-only query; the scan then goes on by key (keyset paging), so
    the per-pair probe only runs on the pairs the page actually reads.
    """
    cs = t.contact_sessions.alias("cs")
    order, conditions = _order(conn, cs), matching_conditions(cs, query)
    keys = select(*order).where(and_(True, *conditions)).order_by(*order)
    start = conn.execute(keys.offset(min(query.offset, BIGINT_MAX)).limit(1)).first() if query.offset else None
    if query.offset and start is None:
        return
    scan = select(*order, cs.c.email.label("contact"), _first_pair_flag(cs, query).label("seen")).where(and_(True, *conditions))
    bound, inclusive, batch = start, True, 256
    while True:
        after = [] if bound is None else [tuple_(*order) >= tuple(bound) if inclusive else tuple_(*order) > tuple(bound)]
        rows = conn.execute(scan.where(*after).order_by(*order).limit(batch)).fetchall()
        yield from rows
        if len(rows) < batch:
            return
        bound, inclusive, batch = tuple(rows[-1])[:3], False, batch * 4


def filter_page(conn: Connection, query: ContactsQuery) -> tuple[list[str], dict]:
    """Emails of the page's contacts in order, and the pagination block.

    Pairs are scanned from `offset` until 51 first pairs are found (50 to show, one to know a later page
    holds a contact), so a page costs about the pairs it reads, not all matching pairs.
    """
    found, position = [], query.offset
    for row in scan_pairs(conn, query):
        if not row.seen:
            found.append((row.contact, position))
            if len(found) > PAGE_SIZE:
                break
        position += 1
    total = count_pairs(conn, query)
    shown = found[:PAGE_SIZE]
    processed = shown[-1][1] + 1 if len(shown) == PAGE_SIZE else max(query.offset, total)
    pagination = {"records_processed": int(processed), "total_records": int(total), "has_more": len(found) > PAGE_SIZE}
    return [email for email, _ in shown], pagination


def emails_page(conn: Connection, query: ContactsQuery) -> tuple[list[str], dict, bool]:
    """Known contacts of the next ≤ 50 listed emails, the pagination, and whether any listed email is known."""
    emails = query.emails
    chunk = emails[query.offset : query.offset + PAGE_SIZE]
    known = set(_known(conn, chunk))
    any_known = bool(known) or _any_known(conn, emails)
    processed = query.offset + len(chunk)
    pagination = {"records_processed": processed, "total_records": len(emails), "has_more": processed < len(emails)}
    return [e for e in chunk if e in known], pagination, any_known


def _chunks(emails) -> Iterator[list[str]]:
    for start in range(0, len(emails), 5000):
        yield list(emails[start : start + 5000])


def _known(conn: Connection, emails) -> list[str]:
    """The listed emails that are contacts."""
    listed = select(t.contacts.c.email).where(t.contacts.c.email.in_(bindparam("part", expanding=True)))
    return [email for part in _chunks(emails) for email in conn.execute(listed, {"part": part}).scalars()]


def _any_known(conn: Connection, emails) -> bool:
    """Whether any listed email is a contact: stops at the first one found instead of fetching them all."""
    listed = select(t.contacts.c.email).where(t.contacts.c.email.in_(bindparam("part", expanding=True))).limit(1)
    return any(conn.execute(listed, {"part": part}).first() for part in _chunks(emails))


def load_summaries(conn: Connection, emails: list[str], as_of: datetime) -> list[dict]:
    """The stored summaries of these contacts in the given order, with days_since_last_conversion filled in."""
    if not emails:
        return []
    rows = conn.execute(
        select(t.contacts.c.email, t.contacts.c.summary, t.contacts.c.last_conversion_at).where(t.contacts.c.email.in_(emails))
    ).fetchall()
    by_email = {row.email: row for row in rows}
    contacts = []
    for email in emails:
        row = by_email[email]
        summary = json.loads(row.summary)
        last = row.last_conversion_at if isinstance(row.last_conversion_at, datetime) else datetime.fromisoformat(str(row.last_conversion_at))
        summary["days_since_last_conversion"] = int((as_of - last.replace(tzinfo=None)).total_seconds() // 86_400)
        contacts.append({"email": email, "summary": summary})
    return contacts


def answer(conn: Connection, query: ContactsQuery, as_of: datetime) -> dict:
    """The response for a parsed query on an open connection."""
    if query.emails is not None:
        emails, pagination, any_known = emails_page(conn, query)
        if not any_known:
            return dict(NO_MATCH)
    else:
        emails, pagination = filter_page(conn, query)
        if pagination["total_records"] == 0:
            return dict(NO_MATCH)
    return {"contacts": load_summaries(conn, emails, as_of), "pagination": pagination}


@contextmanager
def snapshot(engine: Engine) -> Iterator[Connection]:
    """A read-only transaction: the page, its count and its summaries all come from one published state."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN")  # WAL: the snapshot holds from the first read until the rollback
        else:
            conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        yield conn


def query_contacts(settings: Settings, request: object, *, as_of: datetime | None = None) -> dict:
    """Validate a request and answer it from the published tables (read-only)."""
    return answer_query(settings, parse_request(request), as_of=as_of)


def answer_query(settings: Settings, query: ContactsQuery, *, as_of: datetime | None = None) -> dict:
    """Answer a validated query from one published state (CLI and API alike); as_of defaults to now."""
    as_of = as_of or datetime.now(timezone.utc)
    if as_of.tzinfo is not None:  # naive means UTC; an aware time is converted, not relabelled
        as_of = as_of.astimezone(timezone.utc).replace(tzinfo=None)
    try:
        with snapshot(read_only_engine(settings.warehouse_url)) as conn:
            return answer(conn, query, as_of)
    except (OperationalError, ProgrammingError) as exc:  # no file, no tables yet, server down
        where = make_url(settings.warehouse_url).render_as_string(hide_password=True)
        raise WarehouseError(
            f"cannot read the warehouse {where} (has `python -m pipeline run` published to it?): {str(exc.orig or exc).splitlines()[0]}"
        ) from None
