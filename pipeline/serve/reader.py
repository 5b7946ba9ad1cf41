"""The reader: /contacts queries answered in SQL from what publish precomputes (SPEC section 11).

Filter mode never loads contacts into pandas: `pairs` counts the matching (contact, session) pairs,
locates the pair at `offset` and scans on from there until 51 contacts' first pairs are found (50 to show,
one to know a later page holds a contact). What is learnt on the way (the count, where the next page
starts) is kept per published version (`memo`). Only the ≤ 50 summaries of the page are read, and the
API splices their stored JSON into its answer without decoding it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import Connection, Engine, bindparam, make_url, select
from sqlalchemy.exc import OperationalError, ProgrammingError

from pipeline.serve.memo import VersionMemo, memo_for, published_version
from pipeline.serve.pairs import count_pairs, locate, scan_pairs, shape_of
from pipeline.serve.query import ContactsQuery, RequestError, parse_request  # noqa: F401 - RequestError re-exported
from pipeline.settings import Settings
from pipeline.warehouse import tables as t
from pipeline.warehouse.engines import WarehouseError, read_only_engine

PAGE_SIZE = 50
NO_MATCH = {"message": "No contacts found for the given parameters."}
DAYS_PLACEHOLDER = '"days_since_last_conversion":null'  # as summaries.py stores it, filled in per query


def filter_page(
    conn: Connection, query: ContactsQuery, memo: VersionMemo | None = None, version: tuple = (0, None)
) -> tuple[list[str], dict]:
    """Emails of the page's contacts in order, and the pagination block.

    Pairs are scanned from `offset` until 51 first pairs are found, so a page costs about the pairs it
    reads; an offset at or past the last pair, or a query nothing matches, reads no pair at all.
    """
    memo = memo or VersionMemo()
    shape, offset = shape_of(query), query.offset
    total = memo.total(shape, version)
    if total is None:
        total = count_pairs(conn, query)
        memo.remember_total(shape, version, total)
    start = memo.start(shape, offset, version) if 0 < offset < total else None
    if 0 < offset < total and start is None:
        start = locate(conn, query, offset)
        if start is not None:
            memo.remember_start(shape, offset, version, start)
    if offset >= total or (offset and start is None):
        return [], {"records_processed": max(offset, total), "total_records": total, "has_more": False}
    found, position, following = [], offset, None
    for key, contact, seen in scan_pairs(conn, query, start):
        if len(found) == PAGE_SIZE and following is None:
            following = key  # the pair at records_processed: where the next page starts
        if not seen:
            found.append((contact, position))
            if len(found) > PAGE_SIZE:
                break
        position += 1
    shown = found[:PAGE_SIZE]
    processed = shown[-1][1] + 1 if len(shown) == PAGE_SIZE else max(offset, total)
    if following is not None:
        memo.remember_start(shape, processed, version, following)
    return [email for email, _ in shown], {"records_processed": processed, "total_records": total, "has_more": len(found) > PAGE_SIZE}


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


def _days_since(last, as_of: datetime) -> int:
    """Whole days from the last conversion to the query's as-of time (SPEC section 7)."""
    last = last if isinstance(last, datetime) else datetime.fromisoformat(str(last))
    return int((as_of - last.replace(tzinfo=None)).total_seconds() // 86_400)


def summary_rows(conn: Connection, emails: list[str], as_of: datetime) -> list[tuple[str, str, int]]:
    """(email, stored summary JSON, days_since_last_conversion) of these contacts, in the given order."""
    if not emails:
        return []
    listed = select(t.contacts.c.email, t.contacts.c.summary, t.contacts.c.last_conversion_at).where(
        t.contacts.c.email.in_(bindparam("emails", expanding=True))
    )
    by_email = {row.email: row for row in conn.execute(listed, {"emails": list(emails)}).fetchall()}
    return [(email, by_email[email].summary, _days_since(by_email[email].last_conversion_at, as_of)) for email in emails]


@dataclass(frozen=True)
class Page:
    """One answer: the page's contacts with their stored summaries, and the pagination (None: no match)."""

    rows: list[tuple[str, str, int]]
    pagination: dict | None

    def as_dict(self) -> dict:
        """The response as Python objects (the reader function and the CLI)."""
        if self.pagination is None:
            return dict(NO_MATCH)
        contacts = []
        for email, summary, days in self.rows:
            parsed = json.loads(summary)
            parsed["days_since_last_conversion"] = days
            contacts.append({"email": email, "summary": parsed})
        return {"contacts": contacts, "pagination": self.pagination}

    def as_json(self) -> bytes:
        """The response as compact JSON, byte for byte `json.dumps(self.as_dict(), ensure_ascii=False,
        separators=(",", ":"))`: the stored summaries (written in that form) are spliced in, not decoded."""
        if self.pagination is None:
            return _compact(NO_MATCH)
        members = [
            '{"email":' + json.dumps(email, ensure_ascii=False) + ',"summary":'
            + summary.replace(DAYS_PLACEHOLDER, f'"days_since_last_conversion":{days}', 1) + "}"
            for email, summary, days in self.rows
        ]
        return ('{"contacts":[' + ",".join(members) + '],"pagination":' + _compact(self.pagination).decode() + "}").encode()


def _compact(value: dict) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def read_page(conn: Connection, query: ContactsQuery, as_of: datetime, memo: VersionMemo | None = None) -> Page:
    """The answer to a parsed query on an open snapshot; `memo` keeps what was learnt for the next queries."""
    if query.emails is not None:
        emails, pagination, any_known = emails_page(conn, query)
        if not any_known:
            return Page([], None)
    else:
        version = published_version(conn)
        emails, pagination = filter_page(conn, query, memo.at(version) if memo else None, version)
        if pagination["total_records"] == 0:
            return Page([], None)
    return Page(summary_rows(conn, emails, as_of), pagination)


def answer(conn: Connection, query: ContactsQuery, as_of: datetime) -> dict:
    """The response for a parsed query on an open connection."""
    return read_page(conn, query, as_of).as_dict()


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
    return published_page(settings, query, as_of=as_of).as_dict()


def published_page(settings: Settings, query: ContactsQuery, *, as_of: datetime | None = None) -> Page:
    """The page of a validated query from one published state, with this process's memo of the warehouse."""
    as_of = as_of or datetime.now(timezone.utc)
    if as_of.tzinfo is not None:  # naive means UTC; an aware time is converted, not relabelled
        as_of = as_of.astimezone(timezone.utc).replace(tzinfo=None)
    try:
        with snapshot(read_only_engine(settings.warehouse_url)) as conn:
            return read_page(conn, query, as_of, memo_for(settings.warehouse_url))
    except (OperationalError, ProgrammingError) as exc:  # no file, no tables yet, server down
        where = make_url(settings.warehouse_url).render_as_string(hide_password=True)
        raise WarehouseError(
            f"cannot read the warehouse {where} (has `python -m pipeline run` published to it?): {str(exc.orig or exc).splitlines()[0]}"
        ) from None
