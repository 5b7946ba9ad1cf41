"""One contact's journey as the web UI's timeline draws it (SPEC section 15), read from the published tables.

The /contacts answer has exactly the seed's session keys (SPEC section 5), so it lacks what a timeline needs:
the session's `channel`, its id, its touch roles and every conversion of the contact in it. This reads them
from `contact_sessions` (which stores the channel and the roles), `sessions` and `conversions`.
"""

from __future__ import annotations

from sqlalchemy import Connection, select

from pipeline.serve.query import RequestError
from pipeline.serve.reader import snapshot
from pipeline.settings import Settings
from pipeline.warehouse import tables as t
from pipeline.warehouse.engines import read_only_engine

ROLES = ("first", "converting", "assist", "after")
ATTRIBUTION = ("source", "medium", "campaign", "content", "term", "channel", "landing_page")


def stamp(value) -> str | None:
    """A warehouse timestamp as the API shows it, `YYYY-MM-DD HH:MM:SS` (SQLite gives text, PostgreSQL datetimes)."""
    return None if value is None else str(value)[:19]


def parse_journey_request(request: object) -> str:
    """The normalised email of a `{"email": ...}` body; anything else is a RequestError naming the field."""
    if not isinstance(request, dict):
        raise RequestError("request must be a JSON object", None)
    unknown = sorted(set(request) - {"email"})
    if unknown:
        raise RequestError(f"unknown field {unknown[0]!r}", unknown[0])
    email = request.get("email")
    if not isinstance(email, str) or not email.strip() or "\x00" in email:
        raise RequestError("email must be a non-empty string", "email")
    return email.strip().lower()


def _sessions(conn: Connection, email: str) -> list:
    cs, s = t.contact_sessions, t.sessions
    columns = [cs.c.session_id, cs.c.session_timestamp, *(cs.c[name] for name in ATTRIBUTION), cs.c.is_own_device,
               *(cs.c[f"is_{role}"] for role in ROLES), s.c.session_duration, s.c.exit_page]
    query = (select(*columns).select_from(cs.join(s, (s.c.anonymous_id == cs.c.anonymous_id) & (s.c.session_id == cs.c.session_id)))
             .where(cs.c.email == email).order_by(cs.c.session_timestamp, cs.c.session_id))
    return conn.execute(query).fetchall()


def _conversions(conn: Connection, email: str) -> list:
    c = t.conversions
    query = (select(c.c.event_id, c.c.session_id, c.c.timestamp, c.c.conversion_page, c.c.conversion_type, c.c.conversion_id)
             .where(c.c.email == email).order_by(c.c.timestamp, c.c.event_id))
    return conn.execute(query).fetchall()


def journey_on(conn: Connection, email: str) -> dict | None:
    """The contact's sessions in journey order with channel, roles, touches and conversions; None if unknown.

    Touches follow SPEC section 7: first = the earliest session, converting = the session holding the
    contact's earliest conversion (by timestamp, then event id), recent = the latest session.
    """
    rows = _sessions(conn, email)
    if not rows:
        return None
    conversions = _conversions(conn, email)
    converting_session = conversions[0].session_id if conversions else None
    by_session: dict[str, list] = {}
    for c in conversions:
        by_session.setdefault(c.session_id, []).append(
            {"timestamp": stamp(c.timestamp), "conversion_page": c.conversion_page, "type": c.conversion_type, "id": c.conversion_id}
        )
    sessions = []
    for position, row in enumerate(rows):
        touches = [name for name, holds in (("first", position == 0), ("converting", row.session_id == converting_session),
                                            ("recent", position == len(rows) - 1)) if holds]
        sessions.append({
            "session_id": row.session_id,
            "timestamp": stamp(row.session_timestamp),
            **{name: row._mapping[name] for name in ATTRIBUTION},
            "session_duration": int(row.session_duration),
            "exit_page": row.exit_page,
            "own_device": bool(row.is_own_device),
            "roles": [role for role in ROLES if row._mapping[f"is_{role}"]],
            "touches": touches,
            "conversions": by_session.get(row.session_id, []),
        })
    return {"email": email, "sessions": sessions}


def contact_journey(settings: Settings, email: str) -> dict | None:
    """The journey of one contact from one published state (read-only); None for an unknown email."""
    with snapshot(read_only_engine(settings.warehouse_url)) as conn:
        return journey_on(conn, email)
