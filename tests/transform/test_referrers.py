"""The bundled referrer-class table (pipeline/data/referrers.csv): well-formed, and broad enough for SPEC §5."""

import csv

import pytest

from pipeline.transform.referrers import (
    CLASS_CATEGORY,
    CLASS_MEDIUM,
    PORTAL_QUERY_PARAMS,
    REFERENCE_DIR,
    ga4_source_categories,
    lookup_app,
    lookup_host,  # fmt: skip
    mail_domains,
    referrer_table,
    registered_domain,
)

# GA4's sheet lists these webmail hosts as SEARCH; SPEC §5 says webmail is email, so our email rows override them.
GA4_WEBMAIL_OVERRIDES = {"email.seznam.cz", "mail.yandex.ru", "mail.rambler.ru"}


def raw_rows() -> list[dict[str, str]]:
    """The file's rows as written, duplicates and spacing included (referrer_table() would hide them)."""
    with open(REFERENCE_DIR / "referrers.csv", newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == ["host", "class", "query_params"]
        return list(reader)


def test_keys_are_lower_case_trimmed_hosts_or_app_ids():
    for row in raw_rows():
        key = row["host"]
        assert key == key.strip().lower() and key, key
        assert "." in key and "/" not in key and ":" not in key and " " not in key, key
        assert not key.startswith(".") and not key.endswith(".") and ".." not in key, key
        assert "#" not in key.partition(".")[2], key  # a numbered family's `#` stands in the first label only


def test_keys_are_unique_and_sorted():
    keys = [row["host"] for row in raw_rows()]
    assert len(keys) == len(set(keys)), sorted({k for k in keys if keys.count(k) > 1})
    assert keys == sorted(keys)


def test_classes_come_from_the_allowed_set():
    classes = {row["class"] for row in raw_rows()}
    assert classes == set(CLASS_MEDIUM)  # every class used, none other


def test_query_params_only_on_search_rows():
    for row in raw_rows():
        if row["query_params"]:
            assert row["class"] == "search", row["host"]
            names = row["query_params"].split("|")
            assert all(name and name == name.strip() and "=" not in name for name in names), row
            assert len(names) == len(set(names)), row


def test_table_is_broad():
    counts = {name: 0 for name in CLASS_MEDIUM}
    for klass in referrer_table().values():
        counts[klass.name] += 1
    assert counts["search"] >= 300 and counts["social"] >= 500 and counts["email"] >= 150, counts
    assert min(counts.values()) >= 30, counts


@pytest.mark.parametrize("category", ["SEARCH", "SOCIAL", "VIDEO", "SHOPPING"])
def test_every_ga4_host_is_in_the_table_with_its_category(category):
    table = referrer_table()
    hosts = [s for s, c in ga4_source_categories().items() if c == category and "." in s]
    assert hosts
    for host in hosts:
        expected = "email" if host in GA4_WEBMAIL_OVERRIDES else category
        assert host in table, host
        assert CLASS_CATEGORY.get(table[host].name, table[host].name) == expected, host


def test_www_rows_share_the_class_of_their_host():
    table = referrer_table()
    for key, klass in table.items():
        if key.startswith("www.") and key[4:] in table:
            assert klass == table[key[4:]], key


# SPEC §5's webmail providers (and more), each with hosts that must be classed email
WEBMAIL = {
    "gmail": "mail.google.com",
    "outlook-hotmail-live": "outlook.live.com mail.live.com outlook.office.com outlook.office365.com "
                            "outlook.cloud.microsoft hotmail.com eur01.safelinks.protection.outlook.com",
    "yahoo": "mail.yahoo.com fr.mail.yahoo.com mail.yahoo.co.jp",
    "aol": "mail.aol.com",
    "proton": "mail.proton.me mail.protonmail.com",
    "icloud": "www.icloud.com icloud.com",
    "gmx": "gmx.net www.gmx.net navigator.gmx.net gmx.de gmx.at gmx.ch gmx.com gmx.co.uk gmx.fr deref-gmx.net",
    "web-de": "web.de navigator.web.de deref-web.de",
    "mail-com": "mail.com deref-mail.com",
    "ionos-1und1": "email.ionos.de email.ionos.com email.ionos.co.uk mail.ionos.com webmail.1und1.de",
    "orange-wanadoo": "messagerie.orange.fr mail.orange.fr webmail.orange.fr wanadoo.fr",
    "free": "webmail.free.fr zimbra.free.fr",
    "sfr": "webmail.sfr.fr messagerie.sfr.fr",
    "laposte": "laposte.net",
    "libero": "mail.libero.it",
    "virgilio": "mail.virgilio.it",
    "tiscali": "mail.tiscali.it",
    "tim-alice": "mail.tim.it mail.alice.it",
    "seznam": "email.seznam.cz email.cz",
    "centrum": "mail.centrum.cz",
    "yandex": "mail.yandex.ru mail.yandex.com mail.yandex.com.tr mail.yandex.by mail.yandex.kz mail.yandex.ua",
    "mail-ru": "e.mail.ru touch.mail.ru",
    "rambler": "mail.rambler.ru",
    "naver": "mail.naver.com m.mail.naver.com",
    "daum-kakao": "mail.daum.net mail.kakao.com",
    "qq": "mail.qq.com wx.mail.qq.com exmail.qq.com",
    "netease": "mail.163.com mail.126.com mail.yeah.net",
    "sina-sohu": "mail.sina.com.cn mail.sohu.com",
    "zoho": "mail.zoho.com mail.zoho.eu mail.zoho.in",
    "fastmail": "app.fastmail.com www.fastmail.com",
    "tuta": "app.tuta.com mail.tutanota.com",
    "rediff": "mail.rediff.com rediffmail.com",
    "t-online": "email.t-online.de",
    "freenet": "webmail.freenet.de",
    "telenet": "webmail.telenet.be",
    "bluewin": "email.bluewin.ch",
    "polish-portals": "poczta.interia.pl poczta.wp.pl poczta.onet.pl poczta.o2.pl",
    "abv": "abv.bg",
    "ukr-net": "mail.ukr.net",
}  # fmt: skip
MAIL_APPS = """com.google.android.gm com.microsoft.office.outlook com.yahoo.mobile.client.android.mail
ch.protonmail.android com.samsung.android.email.provider com.fsck.k9 net.thunderbird.android ru.mail.mailapp
ru.yandex.mail com.tencent.androidqqmail com.nhn.android.mail cz.seznam.email de.gmx.mobile.android.mail
de.web.mobile.android.mail com.zoho.mail de.tutao.tutanota""".split()


@pytest.mark.parametrize("provider", list(WEBMAIL))
def test_webmail_provider_is_email(provider):
    for host in WEBMAIL[provider].split():
        assert lookup_host(host) is not None and lookup_host(host).name == "email", host


@pytest.mark.parametrize("app_id", MAIL_APPS)
def test_mail_app_is_email(app_id):
    assert lookup_app(app_id).name == "email"


@pytest.mark.parametrize(
    ("webmail", "search"),
    [
        ("mail.google.com", "google.com"), ("outlook.live.com", "bing.com"), ("mail.yahoo.com", "search.yahoo.com"),
        ("mail.yandex.ru", "yandex.ru"), ("e.mail.ru", "go.mail.ru"), ("mail.naver.com", "search.naver.com"),
        ("email.seznam.cz", "seznam.cz"), ("mail.daum.net", "search.daum.net"), ("mail.rambler.ru", "nova.rambler.ru"),
        ("mail.yahoo.co.jp", "search.yahoo.co.jp"), ("navigator.gmx.net", "suche.gmx.net"),
        ("navigator.web.de", "suche.web.de"), ("poczta.onet.pl", "onet.pl"), ("mail.centrum.cz", "centrum.cz"),
    ],
)  # fmt: skip
def test_webmail_is_email_though_the_same_company_searches(webmail, search):
    assert (lookup_host(webmail).name, lookup_host(search).name) == ("email", "search")
    assert lookup_host(search).query_params


@pytest.mark.parametrize(
    ("host", "params"),
    [
        ("google.com", ("q",)), ("google.de", ("q",)), ("google.co.uk", ("q",)), ("google.com.au", ("q",)),
        ("google.co.jp", ("q",)), ("google.com.br", ("q",)), ("google.co.in", ("q",)), ("google.cat", ("q",)),
        ("images.google.fr", ("q",)), ("news.google.com.mx", ("q",)), ("bing.com", ("q",)), ("cn.bing.com", ("q",)),
        ("search.yahoo.com", ("p", "q")), ("uk.search.yahoo.com", ("p", "q")), ("search.yahoo.co.jp", ("p",)),
        ("yandex.ru", ("text",)), ("yandex.com.tr", ("text",)), ("yandex.kz", ("text",)), ("baidu.com", ("wd", "word")),
        ("search.naver.com", ("query",)), ("search.daum.net", ("q",)), ("search.seznam.cz", ("q",)),
        ("duckduckgo.com", ("q",)), ("www.ecosia.org", ("q",)), ("www.qwant.com", ("q",)), ("search.brave.com", ("q",)),
        ("kagi.com", ("q",)), ("www.mojeek.com", ("q",)), ("www.sogou.com", ("query", "keyword")), ("www.so.com", ("q",)),
        ("nova.rambler.ru", ("query",)), ("go.mail.ru", ("q",)), ("metager.org", ("eingabe",)),
    ],
)  # fmt: skip
def test_search_engine_and_its_query_parameters(host, params):
    assert lookup_host(host) == ("search", params)


@pytest.mark.parametrize(
    ("host", "klass"),
    [
        ("docs.google.com", "referral"), ("maps.google.com", "referral"), ("translate.google.com", "referral"),
        ("gemini.google.com", "ai"), ("adservice.google.com", "display"), ("play.google.com", "search"),
        ("groups.google.com", "social"), ("shopping.google.com", "shopping"), ("login.live.com", "referral"),
        ("teams.microsoft.com", "social"), ("copilot.microsoft.com", "ai"), ("news.yahoo.com", "search"), ("finance.yahoo.com", "referral"),
        ("shopping.yahoo.com", "shopping"), ("answers.yahoo.com", "social"), ("maps.yandex.ru", "referral"),
        ("market.yandex.ru", "shopping"), ("yabs.yandex.ru", "display"), ("tieba.baidu.com", "social"),
        ("blog.naver.com", "social"), ("shopping.naver.com", "shopping"), ("my.mail.ru", "social"),
        ("youtube.com", "video"), ("youtu.be", "video"), ("t.co", "social"), ("x.com", "social"),
        ("news.ycombinator.com", "social"), ("doubleclick.net", "display"), ("chatgpt.com", "ai"),
    ],
)  # fmt: skip
def test_properties_of_search_companies_keep_their_own_class(host, klass):
    assert lookup_host(host).name == klass


# ---- rules for the hosts of mail providers and search portals ----------------------------------------------

APP_ID_STARTS = {"com", "org", "net", "de", "ru", "cz", "ch", "it", "jp", "me"}  # reverse-DNS app ids in the table


def test_mail_domains_are_sorted_unique_registered_domains():
    lines = (REFERENCE_DIR / "mail_domains.txt").read_text(encoding="utf-8").splitlines()
    assert lines == sorted(set(lines)) and len(lines) >= 100
    for domain in lines:
        assert domain == domain.strip().lower() and registered_domain(domain) == domain, domain


def test_every_webmail_host_row_names_a_mail_domain():
    hosts = [key for key, klass in referrer_table().items()
             if klass.name == "email" and key.split(".")[0] not in APP_ID_STARTS]  # fmt: skip
    assert len(hosts) >= 100
    assert sorted(h for h in hosts if registered_domain(h) not in mail_domains()) == []


@pytest.mark.parametrize(
    "host",
    [
        "mail07.orange.fr", "webmail2m.orange.fr", "wmail.orange.fr", "messageriepro5.orange.fr",
        "mailbusiness.ionos.es", "mailbusiness.ionos.co.uk", "webmail.1and1.com", "mail.vodafone.de",
        "webmail.vodafone.it", "webmail.hispeed.ch", "upcmail.upc.ch", "x7k2p-c.c.yom.mail.yahoo.net",
        "lightmailer-bs.web.de", "mail2.kakao.com", "webmail.yandex.ru", "poczta.orange.pl", "correo.terra.com.br",
    ],
)  # fmt: skip
def test_mail_label_under_a_mail_domain_is_email(host):
    assert lookup_host(host) == ("email", ())


@pytest.mark.parametrize("host", ["mail.example.com", "webmail.example.co.uk", "mailman.python.org", "mail.ru",
                                  "www.orange.fr", "www.bluewin.ch", "login.vodafone.de"])  # fmt: skip
def test_mail_label_elsewhere_or_a_portal_page_is_not_email(host):
    assert lookup_host(host) is None


@pytest.mark.parametrize(
    "host", ["deref-gmx.es", "deref-gmx.co.uk", "deref-web.de", "deref-mail.com", "deref-1und1-02.de", "deref-1und1.de"]
)
def test_dereferrer_of_a_mail_provider_is_email(host):
    assert lookup_host(host) == ("email", ())


def test_dereferrer_of_an_unknown_domain_is_not_email():
    assert (lookup_host("deref-example.com"), lookup_host("deref-gmx.example")) == (None, None)


def test_numbered_family_row_covers_every_server_number():
    assert lookup_host("rich-v01.bluewin.ch") == lookup_host("rich-v17.bluewin.ch") == ("email", ())
    assert (lookup_host("rich-v.bluewin.ch"), lookup_host("rich.bluewin.ch")) == (None, None)


@pytest.mark.parametrize(
    ("host", "params"),
    [
        ("aolsearch.aol.co.uk", ("q", "query")), ("search.tb.ask.com", ("q",)), ("searchassist.babylon.com", ("q",)),
        ("search.ke.voila.fr", ("kw", "rdata")), ("suche.1und1.de", ()), ("search.gmx.fr", ()),
        ("recherche.sfr.fr", ()), ("search.xfinity.com", ()),
    ],
)  # fmt: skip
def test_search_label_under_a_portal_or_search_engine_is_search(host, params):
    klass = lookup_host(host)
    assert klass.name == "search"
    assert klass.query_params == tuple(dict.fromkeys(params + PORTAL_QUERY_PARAMS))  # the portal's own first


@pytest.mark.parametrize("host", ["search.example.com", "research.orange.fr", "elasticsearch.example.org",
                                  "opensearch.org", "www.searchenginejournal.com"])  # fmt: skip
def test_search_label_elsewhere_is_not_search(host):
    assert lookup_host(host) is None


@pytest.mark.parametrize(
    ("host", "klass"),
    [
        ("search.shopping.naver.com", "shopping"), ("mail.maps.yandex.ru", "referral"), ("suche.gmx.net", "search"),
        ("mail.google.com", "email"), ("search.naver.com", "search"), ("go.mail.ru", "search"),
    ],
)  # fmt: skip
def test_rows_below_the_registered_domain_win_over_the_rules(host, klass):
    assert lookup_host(host).name == klass
