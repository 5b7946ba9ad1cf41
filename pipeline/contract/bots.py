"""Bot filtering (SPEC §4): user agents matching the maintained crawler list are not visitors."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.settings import REFERENCE_DIR

BOT_PATTERNS_FILE = REFERENCE_DIR / "bot_user_agents.txt"
# RE2 (Arrow's regex engine) keeps a fast DFA only while a pattern stays small; ~1,500 alternatives in one
# regex fall back to a slow engine, so the list is matched as a few combined regexes of this many patterns.
PATTERNS_PER_REGEX = 400


@lru_cache(maxsize=1)
def bot_patterns() -> tuple[str, ...]:
    """The regex patterns of bot_user_agents.txt (blank lines and # comments skipped; spaces are kept)."""
    lines = BOT_PATTERNS_FILE.read_text(encoding="utf-8").splitlines()
    return tuple(line for line in lines if line.strip() and not line.startswith("#"))


@lru_cache(maxsize=1)
def _combined_regexes() -> tuple[str, ...]:
    """The patterns joined into a few alternations (one per PATTERNS_PER_REGEX patterns)."""
    patterns = bot_patterns()
    return tuple(
        "|".join(f"(?:{p})" for p in patterns[i : i + PATTERNS_PER_REGEX])
        for i in range(0, len(patterns), PATTERNS_PER_REGEX)
    )


_VERDICTS: dict[str, bool] = {}  # user agent → bot or not, for the process (the list is read once, too)
VERDICTS_KEPT = 100_000  # beyond this many distinct user agents the verdicts start over


def _verdicts(user_agents: pa.Array) -> np.ndarray:
    """`_match_any` for distinct user agents, each asked once a process: Arrow compiles the combined regexes on every
    call (~8 ms for the four, whatever the values), and a chunk of a day's lines holds few agents not seen before
    (a 30-day full refresh's 120 chunks: ~1 CPU-s of compiling)."""
    texts = user_agents.to_pylist()
    known = {text: _VERDICTS.get(text) for text in texts}  # this call's own copy: another thread may clear the dict
    unseen = [text for text, verdict in known.items() if verdict is None]
    if unseen:
        found = dict(zip(unseen, _match_any(pa.array(unseen, type=pa.string())).tolist()))
        known.update(found)
        if len(_VERDICTS) + len(found) > VERDICTS_KEPT:
            _VERDICTS.clear()
        _VERDICTS.update(found)
    return np.array([known[text] for text in texts], dtype=bool)


def _match_any(user_agents: pa.Array) -> np.ndarray:
    """Case-insensitive match of distinct user agents against every combined regex."""
    matched = np.zeros(len(user_agents), dtype=bool)
    for regex in _combined_regexes():
        hits = pc.match_substring_regex(user_agents, regex, ignore_case=True)
        matched |= hits.fill_null(False).to_numpy(zero_copy_only=False)
    return matched


def bot_flags(user_agents: pa.ChunkedArray | pa.Array) -> pa.Array:
    """True where the user agent matches a bot pattern (NULL or blank: not a bot); each distinct user agent once."""
    encoded = pc.dictionary_encode(user_agents.combine_chunks() if isinstance(user_agents, pa.ChunkedArray) else user_agents)
    values = encoded.dictionary.cast(pa.string())
    blank = pc.equal(pc.utf8_trim_whitespace(values), "").fill_null(True).to_numpy(zero_copy_only=False)
    matched = _verdicts(values) & ~blank if len(values) else np.zeros(0, dtype=bool)
    return pc.fill_null(pc.take(pa.array(matched), encoded.indices), False)


def is_bot(user_agents: pd.Series) -> pd.Series:
    """`bot_flags` for a pandas column (NA or blank user agents are not bots)."""
    flags = bot_flags(pa.array(user_agents, type=pa.string(), from_pandas=True))
    return pd.Series(flags.to_numpy(zero_copy_only=False), index=user_agents.index, name=user_agents.name, dtype=bool)
