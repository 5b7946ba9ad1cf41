"""Bot filtering (SPEC §4) against the bundled crawler-user-agents patterns."""

import pandas as pd
import pytest

from pipeline.contract.bots import bot_patterns, is_bot

BROWSERS = {
    "chrome-windows": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "chrome-mac": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "chrome-android": "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
    "android-webview": "Mozilla/5.0 (Linux; Android 13; Pixel 7 Build/TQ3A.230805.001; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/116.0.0.0 Mobile Safari/537.36",
    "chrome-ios": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1",
    "safari-iphone": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "safari-ipad": "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1",
    "safari-mac": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15",
    "firefox-windows": "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "firefox-linux": "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "firefox-android": "Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0",
    "firefox-ios": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/125.0 Mobile/15E148 Safari/605.1.15",
    "edge-windows": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51",
    "edge-android": "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36 EdgA/124.0.2478.64",
    "samsung-internet": "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36",
    "opera": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.0.0 Safari/537.36 OPR/109.0.0.0",
    "facebook-in-app": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/460.0.0.38.109;FBDV/iPhone15,2;FBMD/iPhone;FBSN/iOS;FBSV/17.4;FBLC/en_US]",
    "instagram-in-app": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Instagram 330.0.0.19.106 (iPhone15,2; iOS 17_4; en_US; en)",
}  # fmt: skip

BOTS = {
    "googlebot": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "googlebot-smartphone": "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/41.0.2272.96 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "bingbot": "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "gptbot": "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)",
    "facebook-preview": "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "headless-chrome": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.0.0 Safari/537.36",
    "curl": "curl/8.4.0",
    "python-requests": "python-requests/2.31.0",
    "ahrefs": "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "leading-space-pattern": "Mozilla/5.0 (Windows NT 6.3;compatible; DVbot/1.0; +http://www.doubleverify.com)",
    "trailing-space-pattern": "LCC (+http://corpora.informatik.uni-leipzig.de/crawler_faq.html)",
    "case-insensitive": "MOZILLA/5.0 (COMPATIBLE; GOOGLEBOT/2.1)",
}  # fmt: skip


@pytest.mark.parametrize("user_agent", BROWSERS.values(), ids=BROWSERS.keys())
def test_browser_is_not_a_bot(user_agent):
    assert not is_bot(pd.Series([user_agent], dtype="str")).iloc[0]


@pytest.mark.parametrize("user_agent", BOTS.values(), ids=BOTS.keys())
def test_crawler_is_a_bot(user_agent):
    assert is_bot(pd.Series([user_agent], dtype="str")).iloc[0]


@pytest.mark.parametrize("user_agent", [None, "", "   "], ids=["na", "empty", "blank"])
def test_missing_user_agent_is_not_a_bot(user_agent):
    assert not is_bot(pd.Series([user_agent], dtype="str")).iloc[0]


def test_keeps_index_and_is_bool():
    agents = pd.Series([BOTS["curl"], None, BROWSERS["chrome-windows"], BOTS["curl"]], index=[9, 8, 7, 6], dtype="str")
    result = is_bot(agents)
    assert result.dtype == bool
    assert result.to_dict() == {9: True, 8: False, 7: False, 6: True}


def test_object_dtype_input():
    agents = pd.Series([BOTS["bingbot"], BROWSERS["safari-mac"], None], dtype=object)
    assert is_bot(agents).tolist() == [True, False, False]


def test_empty_series():
    assert is_bot(pd.Series([], dtype="str")).tolist() == []


def test_pattern_list_is_loaded_without_comments():
    patterns = bot_patterns()
    assert len(patterns) > 1000
    assert "Googlebot\\/" in patterns
    assert not any(p.startswith("#") or not p.strip() for p in patterns)


def test_each_user_agent_is_matched_once_a_process_with_the_regexes_verdict(monkeypatch):
    """Arrow compiles the combined regexes on every call, so verdicts are kept per distinct user agent: a second chunk
    with the same agents asks nothing, and the verdicts kept stay bounded."""
    from pipeline.contract import bots

    asked, real = [], bots._match_any
    monkeypatch.setattr(bots, "_match_any", lambda values: asked.append(values.to_pylist()) or real(values))
    monkeypatch.setattr(bots, "_VERDICTS", {})
    agents = pd.Series([BROWSERS["opera"], BOTS["googlebot"], None, " ", BROWSERS["opera"]])
    assert is_bot(agents).tolist() == is_bot(agents).tolist() == [False, True, False, False, False]
    assert asked == [[BROWSERS["opera"], BOTS["googlebot"], " "]]
    monkeypatch.setattr(bots, "VERDICTS_KEPT", 3)
    assert is_bot(pd.Series([BROWSERS["safari-mac"], BOTS["googlebot"]])).tolist() == [False, True]
    assert len(bots._VERDICTS) == 1 and asked[-1] == [BROWSERS["safari-mac"]]  # googlebot answered from before the clear-out
