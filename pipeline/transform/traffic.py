"""Traffic-source attribution of page views (SPEC §5): source, medium, campaign, content, term and channel."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from urllib.parse import quote, unquote_plus

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.settings import Settings
from pipeline.transform.channels import default_channel, source_category
from pipeline.transform.pages import gc_paused, split_page_url
from pipeline.transform.referrers import CATEGORIES, ascii_host, referrer_facts, registered_domain

__all__ = ["attribute_events", "traffic_codes", "campaign_key", "campaign_params", "registered_domain", "canonical", "joint", "string_column"]

CLICK_ID_SOURCES = {"gclid": "google.com", "gbraid": "google.com", "wbraid": "google.com", "dclid": "google.com",
                    "msclkid": "bing.com"}  # fmt: skip
UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")
OUTPUT_COLUMNS = ["page", "campaign_key", "referrer_source", "source", "medium", "campaign", "content", "term",
                  "channel"]  # fmt: skip

SAFE_VALUE = re.compile(r"[A-Za-z0-9_.~-]*")


def campaign_params(tracking: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The utm_* and click-id values of a page view: first non-empty value per name, URL-decoded and trimmed."""
    params: dict[str, str] = {}
    for name, raw_value in tracking:
        if name in params or not (name.startswith("utm_") or name in CLICK_ID_SOURCES):
            continue
        value = (unquote_plus(raw_value) if "%" in raw_value or "+" in raw_value else raw_value).strip()
        if value:
            params[name] = value
    return params


def campaign_key(params: dict[str, str]) -> str:
    """Canonical text of the campaign parameters (sorted, values percent-encoded) so equal campaigns compare equal."""
    return "&".join(
        f"{name}={value if SAFE_VALUE.fullmatch(value) else quote(value, safe='')}"
        for name, value in sorted(params.items())
    )


def _per_distinct(values: np.ndarray, function: Callable[[str], str]) -> np.ndarray:
    """function applied once per distinct value of an object array."""
    if not len(values):
        return np.array([], dtype=object)
    codes, uniques = pd.factorize(values)
    return np.array([function(v) for v in uniques.tolist()], dtype=object)[codes]


def _decode(raw: str) -> str:
    """URL-decoded (+ as space) and trimmed."""
    return (unquote_plus(raw) if "%" in raw or "+" in raw else raw).strip()


def _encode(value: str) -> str:
    """Percent-encoded for the campaign key (safe characters as they are)."""
    return value if SAFE_VALUE.fullmatch(value) else quote(value, safe="")


def _campaign_columns(url: list[int], name: list[str], raw: list[str], size: int) -> dict[str, np.ndarray]:
    """Campaign key, utm values and click-id source per distinct URL, from all URLs' tracking pairs at once."""
    name_codes, names = pd.factorize(np.array(name, dtype=object))
    names = names.tolist()
    wanted = np.array([n.startswith("utm_") or n in CLICK_ID_SOURCES for n in names] + [False], dtype=bool)
    keep = np.flatnonzero(wanted[name_codes])
    value = _per_distinct(np.array(raw, dtype=object)[keep], _decode) if len(keep) else np.array([], dtype=object)
    keep, value = keep[value.astype(bool)], value[value.astype(bool)]  # empty values are absent
    pair_url, pair_code = np.array(url, dtype=np.int64)[keep], name_codes[keep]
    rank = np.argsort(np.argsort(np.array(names, dtype=object))) if names else np.zeros(0, dtype=np.int64)
    _, first = np.unique(pair_url * (len(names) + 1) + rank[pair_code], return_index=True)  # by url, then name
    pair_url, pair_code, value = pair_url[first], pair_code[first], value[first]  # first non-empty value per name
    columns = {f: np.full(size, None, dtype=object) for f in (*UTM_FIELDS, "click_source")}
    for field in UTM_FIELDS:
        if field in names:
            chosen = pair_code == names.index(field)
            columns[field][pair_url[chosen]] = value[chosen]
    for click_id, click_source in reversed(CLICK_ID_SOURCES.items()):  # the first listed click id wins
        if click_id in names:
            columns["click_source"][pair_url[pair_code == names.index(click_id)]] = click_source
    text = pc.binary_join_element_wise(pa.array(np.array(names + [""], dtype=object)[pair_code], pa.string()),
                                       pa.array(_per_distinct(value, _encode), pa.string()), "=")  # fmt: skip
    offsets = pa.array(np.concatenate([[0], np.cumsum(np.bincount(pair_url, minlength=size))]), type=pa.int32())
    keys = pc.binary_join(pa.ListArray.from_arrays(offsets, text), "&")
    columns["campaign_key"] = np.asarray(keys.to_numpy(zero_copy_only=False), dtype=object)
    return columns


def _page_facts(urls: np.ndarray) -> dict[str, np.ndarray]:
    """Per distinct page URL (one parse each): normalised page, registered domain and campaign values."""
    pages, hosts, pair_url, pair_name, pair_raw = [], [], [], [], []
    for i, url in enumerate(urls):
        page, host, tracking = split_page_url(url)
        pages.append(page)
        hosts.append(host)
        for name, raw in tracking:
            pair_url.append(i)
            pair_name.append(name)
            pair_raw.append(raw)
    host_codes, distinct_hosts = pd.factorize(np.array(hosts + [""], dtype=object))
    domains = np.array([registered_domain(h) if h else None for h in distinct_hosts], dtype=object)[host_codes]
    facts = {"page": np.array(pages + [None], dtype=object), "domain": domains}  # last entry: code -1 (NA page_url)
    return facts | _campaign_columns(pair_url, pair_name, pair_raw, len(urls) + 1)


Coded = tuple[np.ndarray, np.ndarray]  # (row codes, -1 = absent; dictionary of values)


def _per_row(per_unique: np.ndarray, index: np.ndarray, where: np.ndarray | None = None) -> Coded:
    """A per-unique field spread over the rows by their factorize index (absent where None or masked out)."""
    present = np.not_equal(per_unique, None)[index]
    return np.where(present if where is None else present & where, index, -1), per_unique


def _coalesce(*options: Coded) -> Coded:
    """Per row, the first option that is present; codes index the options' dictionaries laid end to end."""
    result, offset = options[0][0], len(options[0][1])
    for codes, dictionary in options[1:]:
        result = np.where(result >= 0, result, np.where(codes >= 0, codes + offset, -1))
        offset += len(dictionary)
    return result, np.concatenate([dictionary for _, dictionary in options])


def _constant(value: str, where: np.ndarray) -> Coded:
    """An option holding one value, present where the mask holds."""
    return np.where(where, 0, -1), np.array([value], dtype=object)


def canonical(coded: Coded) -> Coded:
    """Re-code so that equal strings share one code (dictionaries of coalesced options may repeat values)."""
    codes, dictionary = coded
    canon, uniques = pd.factorize(dictionary)
    return np.where(codes >= 0, canon[codes], -1), np.asarray(uniques, dtype=object)


def _combination_codes(*columns: tuple[np.ndarray, int]) -> np.ndarray:
    """One integer per distinct combination of code columns (given with their sizes), never overflowing."""
    combined = np.zeros(len(columns[0][0]), dtype=np.int64)
    small = np.prod([float(size) for _, size in columns]) < 2.0**62
    for codes, size in columns:
        combined = combined * size + codes if small else pd.factorize(combined * (size + 1) + codes)[0]
    return combined


def _channels(source: Coded, medium: Coded, campaign: Coded, category: np.ndarray) -> Coded:
    """default_channel evaluated once per distinct (source, medium, campaign, category) combination."""
    combined = _combination_codes((source[0], len(source[1])), (medium[0], len(medium[1])),
                                  (campaign[0], len(campaign[1])), (category, len(CATEGORIES)))  # fmt: skip
    row_codes, combos = pd.factorize(combined)
    first = np.empty(len(combos), dtype=np.int64)
    first[row_codes[::-1]] = np.arange(len(row_codes) - 1, -1, -1)  # the last write per code is its first row
    names = [
        default_channel(source[1][source[0][i]], medium[1][medium[0][i]], campaign[1][campaign[0][i]],
                        CATEGORIES[category[i]])
        for i in first
    ]  # fmt: skip
    return row_codes, np.array(names, dtype=object)


def _categories(source: Coded, tagged: np.ndarray, referrer_category: np.ndarray) -> np.ndarray:
    """Category code per row: source_category of a tagged source (once per distinct source), else the referrer's."""
    lookup = {name: code for code, name in enumerate(CATEGORIES)}
    by_source = np.array([lookup[source_category(s)] for s in source[1]], dtype=np.int64)
    return np.where(tagged, by_source[source[0]], referrer_category)


def joint(first: Coded, second: Coded) -> tuple[np.ndarray, np.ndarray]:
    """Two coded columns re-coded into one code space, so a code compares equal exactly where the strings do."""
    codes, _ = pd.factorize(np.concatenate([first[1], second[1]]).astype(object))
    offset = len(first[1])
    return (np.where(first[0] >= 0, codes[np.maximum(first[0], 0)], -1),
            np.where(second[0] >= 0, codes[offset + np.maximum(second[0], 0)], -1))  # fmt: skip


def string_column(coded: Coded) -> pd.api.extensions.ExtensionArray:
    """A pandas `str` column from codes into a dictionary, built in Arrow (no per-row Python objects)."""
    codes, dictionary = coded
    values = pc.take(pa.array(dictionary, type=pa.string()), pa.array(codes, mask=codes < 0))
    return pd.array(values, dtype="str")


def attribute_events(events: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """Attribute every event as if it started a session, as text columns (see `traffic_codes`)."""
    columns = traffic_codes(events, settings)
    return pd.DataFrame({name: string_column(coded) for name, coded in columns.items()}, index=events.index)


def traffic_codes(events: pd.DataFrame, settings: Settings) -> dict[str, Coded]:
    """Each event's page and attribution as codes into small dictionaries (OUTPUT_COLUMNS), as if it started a
    session; distinct URLs and referrers are parsed once each, and no per-row string is made."""
    page_index, page_urls = pd.factorize(events["page_url"])
    referrer_column = events["referrer"] if "referrer" in events else pd.Series(None, index=events.index, dtype="str")
    referrer_index, referrers = pd.factorize(referrer_column)
    with gc_paused():
        pages = _page_facts(np.asarray(page_urls, dtype=object))
        refs = referrer_facts(np.asarray(referrers, dtype=object), settings)

    domains = np.concatenate([pages["domain"], refs["source"]])
    domain_codes, _ = pd.factorize(np.array([ascii_host(d) if d else d for d in domains], dtype=object))  # IDN = punycode
    page_domain, ref_domain = domain_codes[: len(pages["domain"])], domain_codes[len(pages["domain"]) :]
    has_referrer = ~refs["blocked"][referrer_index] & (ref_domain[referrer_index] != page_domain[page_index])
    everywhere = np.ones(len(events), dtype=bool)
    utm = {f: _per_row(pages[f], page_index) for f in UTM_FIELDS}
    click_source = _per_row(pages["click_source"], page_index)
    has_click = click_source[0] >= 0
    referrer_source = _per_row(refs["source"], referrer_index, has_referrer)
    source = canonical(_coalesce(utm["utm_source"], click_source, referrer_source, _constant("direct", everywhere)))
    medium = canonical(_coalesce(utm["utm_medium"], _constant("cpc", has_click),
                                  _per_row(refs["medium"], referrer_index, has_referrer),
                                  _constant("none", everywhere)))  # fmt: skip
    campaign = canonical(_coalesce(utm["utm_campaign"], _constant("none", everywhere)))
    search_term = _per_row(refs["term"], referrer_index, has_referrer)
    term = _coalesce(utm["utm_term"], search_term, _constant("none", everywhere))
    category = _categories(source, tagged=(utm["utm_source"][0] >= 0) | has_click,
                           referrer_category=np.where(has_referrer, refs["category"][referrer_index], 0))  # fmt: skip
    return {
        "page": _per_row(pages["page"], page_index), "campaign_key": _per_row(pages["campaign_key"], page_index),
        "referrer_source": referrer_source, "source": source, "medium": medium, "campaign": campaign,
        "content": _coalesce(utm["utm_content"], _constant("none", everywhere)), "term": term,
        "channel": _channels(source, medium, campaign, category),
    }  # fmt: skip
