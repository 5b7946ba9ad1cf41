"""What the reader learns about one published version, kept per process: counts and where offsets start.

Every answer reads `warehouse_state` (version and publishing run) in its snapshot; facts learnt at another version are dropped,
so a query after a publish never sees an old count or position. Two kinds of facts are kept, each
exact for its version: `total_records` per request shape (the request without its offset), and the key
of the pair at a position, learnt when a page is answered (the pair after the page's last contact's first
pair is where the next page, at `records_processed`, starts), so paging on never skips pairs again.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from sqlalchemy import Connection, select

from pipeline.warehouse import tables as t

MAX_FACTS = 50_000  # per kind; the least recently used go first (a fact is ~200 bytes)


def published_version(conn: Connection) -> tuple:
    """What identifies the published state the snapshot reads: (version, the run that published it).

    The run id guards against a warehouse rebuilt from scratch that reaches the same version number.
    """
    row = conn.execute(select(t.warehouse_state.c.version, t.warehouse_state.c.run_id).where(t.warehouse_state.c.id == 1)).first()
    return (0, None) if row is None else (int(row.version), row.run_id)


class VersionMemo:
    """Facts keyed by request shape, valid for one warehouse version; thread-safe, bounded, least recently used out."""

    def __init__(self, max_facts: int = MAX_FACTS):
        self.max_facts = max_facts
        self.lock = threading.Lock()
        self.version: tuple | None = None
        self.totals: OrderedDict = OrderedDict()
        self.starts: OrderedDict = OrderedDict()

    def at(self, version: tuple) -> VersionMemo:
        """Use the memo for `version`; facts of any other version are forgotten."""
        with self.lock:
            if version != self.version:
                self.version = version
                self.totals.clear()
                self.starts.clear()
        return self

    def _get(self, facts: OrderedDict, key, version: tuple):
        with self.lock:
            if version != self.version or key not in facts:
                return None
            facts.move_to_end(key)
            return facts[key]

    def _put(self, facts: OrderedDict, key, value, version: tuple) -> None:
        with self.lock:
            if version != self.version:  # a publish happened meanwhile: this fact is already old
                return
            facts[key] = value
            facts.move_to_end(key)
            while len(facts) > self.max_facts:
                facts.popitem(last=False)

    def total(self, shape: tuple, version: tuple) -> int | None:
        return self._get(self.totals, shape, version)

    def remember_total(self, shape: tuple, version: tuple, total: int) -> None:
        self._put(self.totals, shape, total, version)

    def start(self, shape: tuple, offset: int, version: tuple) -> tuple | None:
        return self._get(self.starts, (shape, offset), version)

    def remember_start(self, shape: tuple, offset: int, version: tuple, key: tuple) -> None:
        self._put(self.starts, (shape, offset), key, version)


_MEMOS: dict[str, VersionMemo] = {}
_MEMOS_LOCK = threading.Lock()


def memo_for(url: str) -> VersionMemo:
    """The process's memo of one warehouse."""
    with _MEMOS_LOCK:
        return _MEMOS.setdefault(url, VersionMemo())
