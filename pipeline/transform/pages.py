"""Page URL normalisation (SPEC §3): one canonical form per page, so page filters match exactly."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple
from urllib.parse import unquote_plus

import pandas as pd

TRACKING_PREFIX = "utm_"
TRACKING_PARAMS = frozenset(
    {"gclid", "gbraid", "wbraid", "dclid", "msclkid", "fbclid", "ttclid", "li_fat_id", "mc_cid", "mc_eid", "_ga", "_gl"}
)
DEFAULT_PORTS = {"http": "80", "https": "443"}


class PageParts(NamedTuple):
    """A page URL split into its normalised form, its lower-cased host and the tracking pairs it carried."""

    page: str
    host: str
    tracking: list[tuple[str, str]]


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a loop builds many small tuples (it would rescan them repeatedly)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def param_name(raw_name: str) -> str:
    """Decoded, lower-cased query parameter name: `UTM_Source` and `utm%5Fsource` are the same parameter."""
    if "%" in raw_name or "+" in raw_name:
        raw_name = unquote_plus(raw_name)
    return raw_name.lower()


def is_tracking_param(name: str) -> bool:
    """True for the campaign/click/analytics parameters that §3 strips (name already decoded and lower-cased)."""
    return name.startswith(TRACKING_PREFIX) or name in TRACKING_PARAMS


def _normalize_netloc(netloc: str, scheme: str) -> tuple[str, str]:
    """Lower-case the host and drop the scheme's default port; userinfo is kept as written."""
    if "@" not in netloc and ":" not in netloc:
        host = netloc.lower()
        return host, host
    userinfo, at, hostport = netloc.rpartition("@")
    if hostport.startswith("["):
        end = hostport.find("]")
        host, rest = (hostport, "") if end < 0 else (hostport[: end + 1], hostport[end + 1 :])
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port = hostport.partition(":")
    host = host.lower()
    keep_port = port and port != DEFAULT_PORTS.get(scheme)
    return f"{userinfo}{at}{host}{':' + port if keep_port else ''}", host


def split_page_url(url: str) -> PageParts:
    """Normalise a page URL and return the tracking pairs it carried, so callers parse each URL once."""
    text = url.strip().partition("#")[0]
    base, _, query = text.partition("?")
    scheme, sep, rest = base.partition("://")
    if not sep or not scheme:
        return PageParts(text, "", [])
    scheme = scheme.lower()
    netloc, slash, path = rest.partition("/")
    netloc, host = _normalize_netloc(netloc, scheme)
    kept: list[str] = []
    tracking: list[tuple[str, str]] = []
    if query:
        for piece in query.split("&"):
            if not piece:
                continue
            raw_name, _, raw_value = piece.partition("=")
            name = param_name(raw_name)
            if is_tracking_param(name):
                tracking.append((name, raw_value))
            else:
                kept.append(piece)
    query = "&".join(kept)
    page = f"{scheme}://{netloc}{slash}{path}{'?' + query if query else ''}"
    return PageParts(page, host.rstrip("."), tracking)


def normalize_page(url: str) -> str:
    """The §3 normal form: host lower-cased, default port, fragment and tracking parameters removed."""
    return split_page_url(url).page


def normalize_pages(urls: pd.Series) -> pd.Series:
    """Vectorised normalize_page: each distinct URL is parsed once; NA stays NA."""
    codes, uniques = pd.factorize(urls)
    with gc_paused():
        normalised = pd.array([normalize_page(u) for u in uniques.tolist()] + [None], dtype="str")
    return pd.Series(normalised.take(codes), index=urls.index, name=urls.name, dtype="str")
