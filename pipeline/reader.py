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

from sqlalchemy import Connection, Engine, and_, exists, func, select

from pipeline import tables as t
from pipeline.query import ContactsQuery, RequestError, parse_request  # noqa: F401 - RequestError re-exported
from pipeline.settings import Settings
from pipeline.warehouse import read_only_engine

PAGE_SIZE = 50
NO_MATCH = {"message": "No contacts found for the given parameters."}
BIGINT_MAX = 2**63 - 1  # offsets beyond any pair count are clamped before they reach SQL
ROLE_COLUMNS = {"first": "is_first", "converting": "is_converting", "assist": "is_assist", "after": "is_after"}


def matching_pairs(query: ContactsQuery):
    """SELECT of the (email, session) pairs that match the filters, as SPEC section 11 defines a match."""
    cs, conv = t.contact_sessions, t.conversions
    conditions = [cs.c[name] == value for name, value in query.session_filters.items()]
    if query.touch_scope != "any":
        conditions.append(cs.c[ROLE_COLUMNS[query.touch_scope]].is_(True))
    conditions += _window(cs.c.session_timestamp, query)
    if query.conversion_filters:
        matches = [conv.c.email == cs.c.email, conv.c.session_id == cs.c.session_id]
        matches += [conv.c[name] == value for name, value in query.conversion_filters.items()]
        matches += _window(conv.c.timestamp, query)
        conditions.append(exists(select(conv.c.event_id).where(and_(*matches))))
    return select(cs.c.email, cs.c.session_timestamp, cs.c.session_id).where(and_(True, *conditions))


def _window(column, query: ContactsQuery) -> list:
    bounds = []
    if query.start is not None:
        bounds.append(column >= query.start)
    if query.end is not None:
        bounds.append(column < query.end)
    return bounds


def filter_page(conn: Connection, query: ContactsQuery) -> tuple[list[str], dict]:
    """Emails of the page's contacts in order, and the pagination block."""
    pairs = matching_pairs(query).subquery("pairs")
    email = pairs.c.email.collate("C") if conn.dialect.name == "postgresql" else pairs.c.email  # code-point order everywhere
    order = func.row_number().over(order_by=(pairs.c.session_timestamp, pairs.c.session_id, email)) - 1
    numbered = select(pairs.c.email, order.label("position")).subquery("numbered")
    firsts = select(numbered.c.email, func.min(numbered.c.position).label("first")).group_by(numbered.c.email).subquery("firsts")
    after_offset = firsts.c.first >= min(query.offset, BIGINT_MAX)
    page = conn.execute(
        select(firsts.c.email, firsts.c.first).where(after_offset).order_by(firsts.c.first).limit(PAGE_SIZE + 1)
    ).fetchall()
    total = conn.execute(select(func.count()).select_from(pairs)).scalar_one()
    shown = page[:PAGE_SIZE]
    processed = shown[-1].first + 1 if len(shown) == PAGE_SIZE else max(query.offset, total)
    pagination = {"records_processed": int(processed), "total_records": int(total), "has_more": len(page) > PAGE_SIZE}
    return [row.email for row in shown], pagination


def emails_page(conn: Connection, query: ContactsQuery) -> tuple[list[str], dict, bool]:
    """Known contacts of the next ≤ 50 listed emails, the pagination, and whether any listed email is known."""
    emails = query.emails
    chunk = emails[query.offset : query.offset + PAGE_SIZE]
    known = set(_known(conn, chunk))
    any_known = bool(known) or bool(_known(conn, emails))
    processed = query.offset + len(chunk)
    pagination = {"records_processed": processed, "total_records": len(emails), "has_more": processed < len(emails)}
    return [e for e in chunk if e in known], pagination, any_known


def _known(conn: Connection, emails) -> list[str]:
    found = []
    for start in range(0, len(emails), 5000):
        part = list(emails[start : start + 5000])
        found += conn.execute(select(t.contacts.c.email).where(t.contacts.c.email.in_(part))).scalars().all()
    return found


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
    query = parse_request(request)
    as_of = as_of or datetime.now(timezone.utc)
    if as_of.tzinfo is not None:  # naive means UTC; an aware time is converted, not relabelled
        as_of = as_of.astimezone(timezone.utc).replace(tzinfo=None)
    with snapshot(read_only_engine(settings.warehouse_url)) as conn:
        return answer(conn, query, as_of)
