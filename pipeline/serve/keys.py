"""API keys (SPEC section 12): only a key's sha256 is stored, so a leaked warehouse leaks no usable key."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from pipeline.settings import Settings
from pipeline.warehouse import tables as t
from pipeline.warehouse.engines import WarehouseError, create_tables, get_engine, transaction

KEY_PREFIX = "csk_"  # recognisable in logs and secret scanners; the rest is 256 random bits
MAX_NAME_LENGTH = 100
LAST_USED_EVERY = timedelta(minutes=1)  # last_used_at is written at most this often per key


class ApiKeyError(ValueError):
    """A key command that cannot be done (duplicate or unknown name); one line for the user."""


@dataclass(frozen=True)
class KeyInfo:
    """What `keys list` shows and the API checks: never the key, never its hash."""

    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def utc_now() -> datetime:
    """Naive UTC to the second, as every warehouse timestamp."""
    return datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)


def key_hash(key: str) -> str:
    """The stored form of a key: sha256 hex (keys are 256-bit random, so no salt or slow hash is needed)."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _clean_name(name: str) -> str:
    """A trimmed name that prints on one line in `keys list`."""
    cleaned = name.strip()
    if not cleaned or len(cleaned) > MAX_NAME_LENGTH or not cleaned.isprintable():
        raise ApiKeyError(f"a key name must be 1 to {MAX_NAME_LENGTH} printable characters: {name!r}")
    return cleaned


def _warehouse_call(action: str, function, *args):
    """Run a warehouse call, turning driver errors into one-line WarehouseErrors."""
    try:
        return function(*args)
    except SQLAlchemyError as exc:
        raise WarehouseError(f"cannot {action}: {str(exc).splitlines()[0]}") from None


def create_key(settings: Settings, name: str) -> str:
    """Store a new key under a unique name and return it; this is the only time the key exists in clear."""
    name = _clean_name(name)
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    engine = get_engine(settings.warehouse_url)
    create_tables(engine)

    duplicate = ApiKeyError(f"an API key named {name!r} already exists (names are never reused)")

    def insert() -> None:
        try:
            with transaction(engine) as conn:
                if conn.execute(select(t.api_keys.c.name).where(t.api_keys.c.name == name)).first():
                    raise duplicate
                conn.execute(t.api_keys.insert().values(name=name, key_hash=key_hash(key), created_at=utc_now()))
        except IntegrityError:  # a concurrent create of the same name
            raise duplicate from None

    _warehouse_call("create the key", insert)
    return key


def list_keys(settings: Settings) -> list[KeyInfo]:
    """Every key, oldest first, revoked ones included."""
    engine = get_engine(settings.warehouse_url)
    create_tables(engine)  # a warehouse no run has written to yet simply has no keys
    columns = (t.api_keys.c.name, t.api_keys.c.created_at, t.api_keys.c.last_used_at, t.api_keys.c.revoked_at)

    def read() -> list[KeyInfo]:
        with engine.connect() as conn:
            rows = conn.execute(select(*columns).order_by(t.api_keys.c.created_at, t.api_keys.c.name)).fetchall()
        return [KeyInfo(*row) for row in rows]

    return _warehouse_call("list the keys", read)


def revoke_key(settings: Settings, name: str) -> tuple[datetime, bool]:
    """Revoke a key by name; returns when it was revoked and whether this call did it (revoking twice is fine)."""
    engine = get_engine(settings.warehouse_url)
    create_tables(engine)
    name = name.strip()

    def revoke() -> tuple[datetime, bool]:
        with transaction(engine) as conn:
            row = conn.execute(select(t.api_keys.c.revoked_at).where(t.api_keys.c.name == name)).first()
            if row is None:
                raise ApiKeyError(f"no API key named {name!r}")
            if row.revoked_at is not None:
                return row.revoked_at, False
            now = utc_now()
            conn.execute(update(t.api_keys).where(t.api_keys.c.name == name).values(revoked_at=now))
            return now, True

    return _warehouse_call("revoke the key", revoke)


def find_key(conn: Connection, presented: str) -> KeyInfo | None:
    """The live (not revoked) key matching a presented key, or None; the hash is compared in constant time."""
    wanted = key_hash(presented)
    row = conn.execute(
        select(t.api_keys.c.name, t.api_keys.c.key_hash, t.api_keys.c.created_at, t.api_keys.c.last_used_at, t.api_keys.c.revoked_at)
        .where(t.api_keys.c.key_hash == wanted)
    ).first()
    if row is None or not hmac.compare_digest(row.key_hash, wanted) or row.revoked_at is not None:
        return None
    return KeyInfo(row.name, row.created_at, row.last_used_at, row.revoked_at)


def needs_touch(key: KeyInfo, now: datetime) -> bool:
    """Whether last_used_at is stale enough to be written again (keeps the API mostly read-only)."""
    return key.last_used_at is None or now - key.last_used_at >= LAST_USED_EVERY


def mark_used(engine: Engine, name: str, now: datetime) -> None:
    """Record that a key was used (on the writer engine)."""
    with transaction(engine) as conn:
        conn.execute(update(t.api_keys).where(t.api_keys.c.name == name).values(last_used_at=now))
