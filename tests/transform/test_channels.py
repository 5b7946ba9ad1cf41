"""GA4 default channel group and source categories (SPEC §5, reference/ga4_channel_rules.md)."""

import pytest

from pipeline.transform.channels import default_channel, source_category

# Velir/dbt-ga4 unit_tests/test_macro_default_channel_grouping.py rows, as listed in ga4_channel_rules.md:
# (source, medium, campaign) → channel. The `alibaba` row expects Paid Shopping there; the rules as written
# (no paid medium) give Organic Shopping, as the reference file says.
VELIR_ROWS = [
    ("(direct)", "(none)", "", "Direct"),
    ("(direct)", "(not set)", "", "Direct"),
    ("some-source", "some-medium", "some-cross-network-campaign", "Cross-network"),
    ("some-source", "some-medium", "cross-network", "Cross-network"),
    ("alibaba", "", "", "Organic Shopping"),
    ("some-source", "retargeting", "shopping", "Paid Shopping"),
    ("google", "ppc", "", "Paid Search"),
    ("facebook", "retargeting", "", "Paid Social"),
    ("youtube.com", "paid-something", "", "Paid Video"),
    ("youtube.com", "display", "", "Display"),
    ("some-source", "cpc", "", "Paid Other"),
    ("Google Shopping", "", "", "Organic Shopping"),
    ("some-source", "", "some-shopping-campaign", "Organic Shopping"),
    ("facebook", "", "", "Organic Social"),
    ("some-source", "social", "", "Organic Social"),
    ("youtube.com", "", "", "Organic Video"),
    ("some-source", "video", "", "Organic Video"),
    ("bing", "", "", "Organic Search"),
    ("some-source", "organic", "", "Organic Search"),
    ("some-source", "referral", "", "Referral"),
    ("email", "", "", "Email"),
    ("", "e mail", "", "Email"),
    ("some-source", "affiliate", "", "Affiliates"),
    ("some-source", "audio", "", "Audio"),
    ("sms", "", "", "SMS"),
    ("", "sms", "", "SMS"),
    ("some-source", "something-push", "", "Mobile Push Notifications"),
    ("some-source", "mobile-notification", "", "Mobile Push Notifications"),
    ("firebase", "", "", "Mobile Push Notifications"),
    ("some-source", "some-medium", "some-campaign", "Unassigned"),
]


@pytest.mark.parametrize(("source", "medium", "campaign", "expected"), VELIR_ROWS,
                         ids=[f"{r[0] or '-'}|{r[1] or '-'}|{r[2] or '-'}" for r in VELIR_ROWS])  # fmt: skip
def test_velir_example_rows(source, medium, campaign, expected):
    assert default_channel(source, medium, campaign, source_category(source)) == expected


@pytest.mark.parametrize(("medium", "expected"), [("display", "Display"), ("ppc", "Paid Other")])
def test_snowplow_example_google_ad(medium, expected):
    # snowplow/dbt-snowplow-web integration test: `google-ad` is not in the source list.
    assert default_channel("google-ad", medium, "none", source_category("google-ad")) == expected


@pytest.mark.parametrize(
    ("source", "medium", "campaign", "category", "expected"),
    [
        pytest.param("direct", "none", "none", None, "Direct", id="our-direct-none"),
        pytest.param("(direct)", "none", "none", None, "Direct", id="ga4-direct-our-none"),
        pytest.param("direct", "email", "none", None, "Email", id="direct-source-with-utm-medium-is-not-direct"),
        pytest.param("newsletter", "none", "none", None, "Unassigned", id="utm-source-without-medium"),
        pytest.param("Google", "CPC", "none", "SEARCH", "Paid Search", id="case-insensitive-medium"),
        pytest.param("x", "Display", "none", None, "Display", id="case-insensitive-display"),
        pytest.param("x", "email", "Q4-Cross-Network", None, "Cross-network", id="case-insensitive-campaign"),
        pytest.param("google.com", "cpm", "none", "SEARCH", "Paid Search", id="cpm-is-paid-before-display"),
        pytest.param("partner", "cpm", "none", None, "Display", id="cpm-unlisted-source-display"),
        pytest.param("partner", "paid_social", "none", None, "Paid Other", id="paid-prefix"),
        pytest.param("partner", "none", "eshop-week", None, "Organic Shopping", id="eshop-campaign"),
        pytest.param("partner", "none", "summer-shop", None, "Organic Shopping", id="dash-shop-campaign"),
        pytest.param("partner", "none", "workshop", None, "Unassigned", id="workshop-is-not-shop"),
        pytest.param("partner", "link", "none", None, "Referral", id="medium-link"),
        pytest.param("partner", "app", "none", None, "Referral", id="medium-app"),
        pytest.param("partner", "web-push", "none", None, "Mobile Push Notifications", id="push-suffix"),
        pytest.param("e-mail", "none", "none", None, "Email", id="email-source"),
        pytest.param("partner", "e_mail", "none", None, "Email", id="email-underscore-medium"),
        pytest.param("partner", "social network", "none", None, "Organic Social", id="social-network-medium"),
        pytest.param("partner", "organic", "none", "SOCIAL", "Organic Social", id="social-before-search"),
        pytest.param("mail.google.com", "email", "none", None, "Email", id="webmail-is-email-not-search"),
        pytest.param("google.com", "organic", "none", "SEARCH", "Organic Search", id="referrer-search"),
        pytest.param("facebook.com", "social", "none", "SOCIAL", "Organic Social", id="referrer-social"),
        pytest.param("example.org", "referral", "none", None, "Referral", id="referrer-other-site"),
        pytest.param("doubleclick.net", "display", "none", None, "Display", id="referrer-ad-network"),
        pytest.param("category-prefix", "referral", "none", "SOURCE_CATEGORY_VIDEO", "Organic Video",
                     id="ga4-style-category-name"),
    ],
)  # fmt: skip
def test_channel_rules(source, medium, campaign, category, expected):
    assert default_channel(source, medium, campaign, category) == expected


@pytest.mark.parametrize(
    ("medium", "expected"),
    [
        pytest.param("referral", "AI Assistants", id="referral"),
        pytest.param("organic", "AI Assistants", id="ai-before-organic-search"),
        pytest.param("email", "AI Assistants", id="ai-before-email"),
        pytest.param("social", "Organic Social", id="ai-after-organic-social"),
        pytest.param("video", "Organic Video", id="ai-after-organic-video"),
        pytest.param("cpc", "Paid Other", id="ai-after-paid"),
        pytest.param("display", "Display", id="ai-after-display"),
    ],
)
def test_ai_assistants_sits_between_organic_video_and_organic_search(medium, expected):
    # Plausible's get_channel_lowered: ... organic_video? → ai_assistants? → search_source? ...
    assert default_channel("chatgpt.com", medium, "none", "AI") == expected


def test_ai_campaign_shopping_wins_over_ai():
    assert default_channel("chatgpt.com", "referral", "shopping-days", "AI") == "Organic Shopping"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param("google", "SEARCH", id="ga4-name"),
        pytest.param("Google", "SEARCH", id="ga4-name-case"),
        pytest.param("google.com", "SEARCH", id="host-in-referrer-table"),
        pytest.param("google.co.uk", "SEARCH", id="google-country"),
        pytest.param("news.google.co.uk", None, id="name-without-suffix-is-news.google"),
        pytest.param("bing.com", "SEARCH", id="bing-host"),
        pytest.param("duckduckgo", "SEARCH", id="duckduckgo-name"),
        pytest.param("facebook", "SOCIAL", id="facebook-name"),
        pytest.param("m.facebook.com", "SOCIAL", id="facebook-mobile-host"),
        pytest.param("lnkd.in", "SOCIAL", id="lnkd-in"),
        pytest.param("youtube.com", "VIDEO", id="youtube-host"),
        pytest.param("Google Shopping", "SHOPPING", id="google-shopping-name"),
        pytest.param("IGShopping", "SHOPPING", id="igshopping"),
        pytest.param("amazon.de", "SHOPPING", id="name-without-suffix"),
        pytest.param("shop.ebay.fr", None, id="subdomain-keeps-its-labels"),
        pytest.param("ebay.fr", "SHOPPING", id="ebay-country"),
        pytest.param("github.com", None, id="not-in-ga4-list"),
        pytest.param("github", None, id="plausible-only-name"),
        pytest.param("x", None, id="x-not-in-ga4-list"),
        pytest.param("claude.ai", "AI", id="chatbot-host-from-referrer-table"),
        pytest.param("chatgpt.com", "AI", id="chatgpt-host"),
        pytest.param("chatgpt", "AI", id="chatgpt-name"),
        pytest.param("perplexity", "AI", id="perplexity-name"),
        pytest.param("gemini.google.com", "AI", id="gemini-host-not-google-search"),
        pytest.param("mail.google.com", None, id="webmail-host"),
        pytest.param("email.seznam.cz", "SEARCH", id="tagged-source-by-its-ga4-value"),
        pytest.param("mail.yandex.ru", "SEARCH", id="tagged-source-by-its-ga4-value-2"),
        pytest.param("bucket.s3.amazonaws.com", None, id="no-class-above-the-registered-domain"),
        pytest.param("docs.google.com", None, id="google-docs-referral"),
        pytest.param("newsletter", None, id="unknown-name"),
        pytest.param("example.com", None, id="unknown-host"),
        pytest.param("", None, id="empty"),
        pytest.param("google-ad", None, id="snowplow-google-ad"),
    ],
)
def test_source_category(source, expected):
    assert source_category(source) == expected


@pytest.mark.parametrize(
    ("source", "medium", "expected"),
    [
        pytest.param("github.com", "referral", "Referral", id="github-referral"),
        pytest.param("x", "cpc", "Paid Other", id="x-cpc"),
        pytest.param("slack", "none", "Unassigned", id="slack-untagged-medium"),
        pytest.param("chatgpt.com", "referral", "AI Assistants", id="chatgpt-tagged-link"),
        pytest.param("mail.google.com", "email", "Email", id="webmail-tagged-email"),
    ],
)
def test_tagged_sources_follow_ga4_list(source, medium, expected):
    """SPEC 5: a UTM source is looked up in GA4's list (value, then name without the public suffix)."""
    assert default_channel(source, medium, "none", source_category(source)) == expected
