"""`python -m pipeline.bench.referrer_suite`: a suite's cases scored against the pipeline's answers, misses listed."""

from __future__ import annotations

import json

from pipeline.bench.referrer_suite import main, same_source, score

CASES = [
    {"spec": "hit", "uri": "https://www.google.com/search?q=a+b", "medium": "search", "source": "Google", "term": "a b"},
    {"spec": "wrong term", "uri": "https://www.bing.com/search?q=c", "medium": "search", "source": "Bing", "term": "d"},
    {"spec": "miss", "uri": "https://blog.example.org/", "medium": "social", "source": "Blogger", "term": None},
    {"spec": "internal", "uri": "https://www.example-shop.com/cart", "medium": "internal", "term": None},
]


def test_score_counts_mediums_terms_and_sources_and_keeps_the_misses():
    result = score(CASES)
    assert (result.cases, result.mediums, result.terms, result.termed, result.sources, result.sourced) == (4, 3, 1, 2, 2, 3)
    assert (result.misses, result.term_misses, result.source_misses) == ({"miss": "referral"}, {"wrong term": "c"}, {"miss": "example.org"})


def test_sources_compare_by_name_without_the_public_suffix():
    assert same_source("Google Images", "google.co.uk") and same_source("GMX", "deref-gmx.at")
    assert not same_source("Outlook.com", "live.com") and not same_source("", "direct")


def test_script_prints_the_shares_and_every_miss_and_fails_below_the_target(tmp_path, capsys):
    suite = tmp_path / "suite.json"
    suite.write_text(json.dumps(CASES))
    assert main([str(suite), "--target", "0.75"]) == 0
    out = capsys.readouterr().out
    assert "mediums 3/4 = 75.0%" in out and "terms   1/2 = 50.0%" in out and "sources 2/3 = 66.7% (by name)" in out
    assert "medium miss: miss: suite social (social), ours 'referral'  https://blog.example.org/" in out
    assert "term miss: wrong term: suite 'd', ours 'c'" in out and "source miss: miss: suite 'Blogger', ours 'example.org'" in out
    assert main([str(suite)]) == 1  # 75% is below the default target of 95%


def test_script_says_why_a_suite_cannot_be_read(tmp_path, capsys):
    assert main([str(tmp_path / "missing.json")]) == 2
    assert "cannot score" in capsys.readouterr().err
