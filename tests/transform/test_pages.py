"""Page URL normalisation (SPEC §3)."""

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.transform.pages import TRACKING_PARAMS, normalize_page, normalize_pages, split_page_url

EVERY_TRACKING_PARAM = sorted(TRACKING_PARAMS) + ["utm_source", "utm_medium", "utm_campaign", "utm_term",
                                                  "utm_content", "utm_id", "utm_source_platform"]  # fmt: skip


def test_tracking_params_are_the_spec_list():
    assert TRACKING_PARAMS == {"gclid", "gbraid", "wbraid", "dclid", "msclkid", "fbclid", "ttclid", "li_fat_id",
                               "mc_cid", "mc_eid", "_ga", "_gl"}  # fmt: skip


@pytest.mark.parametrize("param", EVERY_TRACKING_PARAM)
def test_each_tracking_param_is_stripped(param):
    assert normalize_page(f"https://example.com/p?a=1&{param}=x&b=2") == "https://example.com/p?a=1&b=2"


def test_only_tracking_params_leaves_no_question_mark():
    assert normalize_page("https://example.com/p?utm_source=a&gclid=b&fbclid=c") == "https://example.com/p"


def test_empty_query_leaves_no_question_mark():
    assert normalize_page("https://example.com/p?") == "https://example.com/p"


def test_other_params_keep_order_and_encoding():
    url = "https://example.com/s?z=9&utm_medium=cpc&q=caf%C3%A9+au+lait&a=%2F&x"
    assert normalize_page(url) == "https://example.com/s?z=9&q=caf%C3%A9+au+lait&a=%2F&x"


def test_repeated_param_kept_twice():
    assert normalize_page("https://example.com/?tag=a&tag=b") == "https://example.com/?tag=a&tag=b"


def test_tracking_param_names_match_case_insensitively():
    assert normalize_page("https://example.com/?UTM_Source=x&GCLID=y&k=v") == "https://example.com/?k=v"


def test_percent_encoded_tracking_name_is_stripped():
    assert normalize_page("https://example.com/?utm%5Fsource=x&k=v") == "https://example.com/?k=v"


def test_param_merely_containing_a_tracking_name_is_kept():
    assert normalize_page("https://example.com/?my_gclid=1&xutm_source=2") == "https://example.com/?my_gclid=1&xutm_source=2"


def test_empty_pairs_are_dropped():
    assert normalize_page("https://example.com/?a=1&&b=2&") == "https://example.com/?a=1&b=2"


def test_fragment_removed():
    assert normalize_page("https://example.com/p?a=1#section-2") == "https://example.com/p?a=1"


def test_fragment_with_question_mark_removed():
    assert normalize_page("https://example.com/p#x?utm_source=a") == "https://example.com/p"


def test_default_https_port_removed():
    assert normalize_page("https://example.com:443/p") == "https://example.com/p"


def test_default_http_port_removed():
    assert normalize_page("http://example.com:80/p") == "http://example.com/p"


def test_https_port_80_kept():
    assert normalize_page("https://example.com:80/p") == "https://example.com:80/p"


def test_other_port_kept():
    assert normalize_page("http://example.com:8080/p") == "http://example.com:8080/p"


def test_empty_port_removed():
    assert normalize_page("https://example.com:/p") == "https://example.com/p"


def test_host_lower_cased():
    assert normalize_page("https://WWW.Example.COM/p") == "https://www.example.com/p"


def test_scheme_lower_cased():
    assert normalize_page("HTTPS://example.com/p") == "https://example.com/p"


def test_path_case_kept():
    assert normalize_page("https://example.com/Pricing/Team?Plan=Pro") == "https://example.com/Pricing/Team?Plan=Pro"


def test_empty_path_kept_as_is():
    assert normalize_page("https://example.com?utm_source=x") == "https://example.com"


def test_ipv6_host_and_default_port():
    assert normalize_page("https://[2001:DB8::1]:443/x") == "https://[2001:db8::1]/x"


def test_userinfo_kept():
    assert normalize_page("https://User@Example.com:8443/") == "https://User@example.com:8443/"


def test_surrounding_whitespace_trimmed():
    assert normalize_page("  https://example.com/a \n") == "https://example.com/a"


def test_split_returns_host_and_raw_tracking_pairs():
    parts = split_page_url("https://Shop.example.com:443/a?utm_source=News+Letter&k=1&gclid=abc")
    assert parts.page == "https://shop.example.com/a?k=1"
    assert parts.host == "shop.example.com"
    assert parts.tracking == [("utm_source", "News+Letter"), ("gclid", "abc")]


def test_normalize_pages_keeps_index_and_na():
    urls = pd.Series(["https://A.com/?utm_source=x", None, "https://A.com/?utm_source=y", "https://b.com/#f"],
                     index=[10, 11, 12, 13], dtype="str")  # fmt: skip
    result = normalize_pages(urls)
    assert list(result.index) == [10, 11, 12, 13]
    assert result.dtype == "str"
    assert result[10] == result[12] == "https://a.com/"
    assert pd.isna(result[11])
    assert result[13] == "https://b.com/"


def test_normalize_pages_empty_series():
    assert normalize_pages(pd.Series([], dtype="str")).tolist() == []


query_pieces = st.lists(
    st.tuples(st.sampled_from(["a", "b", "utm_source", "gclid", "Q", "_ga", "x%20y"]), st.text("abc%+=", max_size=4)),
    max_size=5,
)


@given(query_pieces)
def test_normalising_twice_changes_nothing(pieces):
    url = "https://Example.com:443/P?" + "&".join(f"{k}={v}" for k, v in pieces)
    once = normalize_page(url)
    assert normalize_page(once) == once
