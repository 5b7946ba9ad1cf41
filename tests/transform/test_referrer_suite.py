"""A referrer test suite in snowplow-referer-parser's format, run through attribute_events: the share of mediums
(and search terms) it gets right.

`referrer_cases.json` is written for this project, case by case modelled on the classes that Snowplow's
`resources/referer-tests.json` covers (search engines and portals, social redirectors, numbered and regional
webmail hosts, mail dereferrers, ad networks, chatbots, ordinary and internal sites); Snowplow's file itself is
not bundled (see pipeline/data/README.md). To measure against it, point REFERRER_SUITE_JSON at a local copy:
`REFERRER_SUITE_JSON=/path/referer-tests.json pytest -rP tests/transform/test_referrer_suite.py`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import NamedTuple

import pandas as pd
import pytest

from pipeline.settings import Settings
from pipeline.transform.traffic import attribute_events

CASES_FILE = Path(__file__).with_name("referrer_cases.json")
PAGE = "https://www.example-shop.com/"  # the page every case lands on; `internal` cases are referrers on its domain
# the suite's mediums in SPEC §5's terms: `unknown` is any other site, `paid` an ad network, chatbots are
# referral (their own AI Assistants channel), `internal` is a referrer that counts as none
MEDIUMS = {"search": "organic", "social": "social", "email": "email", "paid": "display", "chatbot": "referral",
           "unknown": "referral", "internal": "none"}  # fmt: skip
# where this project classes a case differently on purpose (spec → our medium); pipeline/data/README.md says why
DELIBERATE = {
    "Price comparison search": "referral",  # a shopping site, as GA4 has it: medium referral, Organic Shopping
    "Search site the table does not know": "referral",  # no rule classes a domain by the word `search` in its name
}
TARGET = 0.95


class Score(NamedTuple):
    """How many cases got the suite's medium, and how many of the cases with a search term got that term."""

    mediums: int
    cases: int
    terms: int
    termed: int
    misses: dict[str, str]  # spec → our medium, for the cases whose medium differs

    @property
    def medium_share(self) -> float:
        return self.mediums / self.cases

    def report(self) -> str:
        return (f"mediums {self.mediums}/{self.cases} = {self.medium_share:.1%}, "
                f"terms {self.terms}/{self.termed}; misses {sorted(self.misses.items())}")  # fmt: skip


def score(cases: list[dict]) -> Score:
    """Run every case's referrer through attribute_events in one frame and compare with the suite's answers.

    Terms compare after trimming: SPEC §5 trims query values (the suite keeps a leading space once)."""
    events = pd.DataFrame({"page_url": PAGE, "referrer": [case["uri"] for case in cases]}, dtype="str")
    rows = attribute_events(events, Settings())
    misses, terms, termed = {}, 0, 0
    for case, medium, term in zip(cases, rows["medium"], rows["term"], strict=True):
        if medium != MEDIUMS[case["medium"]]:
            misses[case["spec"]] = medium
        if case.get("term") is not None:
            termed += 1
            terms += term == case["term"].strip()
    return Score(len(cases) - len(misses), len(cases), terms, termed, misses)


def own_cases() -> list[dict]:
    return json.loads(CASES_FILE.read_text(encoding="utf-8"))


def test_own_suite_reaches_the_target_and_misses_only_the_deliberate_cases():
    result = score(own_cases())
    print(result.report())
    assert result.medium_share >= TARGET, result.report()
    assert result.misses == DELIBERATE


def test_own_suite_terms_match_except_the_deliberate_cases():
    cases = own_cases()
    kept = [case for case in cases if case["spec"] not in DELIBERATE]
    result = score(kept)
    assert (result.terms, result.termed) == (19, 19)


def test_own_suite_covers_every_medium_of_the_suite():
    cases = own_cases()
    assert {case["medium"] for case in cases} == set(MEDIUMS)
    assert len({case["spec"] for case in cases}) == len(cases)
    assert len(cases) >= 70


def test_score_counts_misses_and_terms():
    cases = [
        {"spec": "hit", "uri": "https://www.google.com/search?q=a+b", "medium": "search", "term": "a b"},
        {"spec": "wrong term", "uri": "https://www.bing.com/search?q=c", "medium": "search", "term": "d"},
        {"spec": "miss", "uri": "https://blog.example.org/", "medium": "social", "term": None},
    ]
    result = score(cases)
    assert result[:5] == (2, 3, 1, 2, {"miss": "referral"})


@pytest.mark.skipif(not os.environ.get("REFERRER_SUITE_JSON"), reason="REFERRER_SUITE_JSON names no local copy")
def test_snowplow_suite_reaches_the_target():
    cases = json.loads(Path(os.environ["REFERRER_SUITE_JSON"]).read_text(encoding="utf-8"))
    result = score(cases)
    print(result.report())
    assert result.medium_share >= TARGET, result.report()
