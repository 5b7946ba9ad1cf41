"""Traffic-source attribution (SPEC §5): hand-worked referrer, click-id and UTM cases."""

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from pipeline.settings import Settings
from pipeline.transform.pages import split_page_url
from pipeline.transform.traffic import OUTPUT_COLUMNS, attribute_events, campaign_key, campaign_params, registered_domain

SETTINGS = Settings(own_domains=["mysite-checkout.com"])
PAGE = "https://www.mysite.com/landing"


def attribute(page_url=PAGE, referrer=None, settings=SETTINGS) -> dict:
    """Attribute one event; NA becomes None so rows compare with plain dicts."""
    events = pd.DataFrame({"page_url": [page_url], "referrer": [referrer]}, dtype="str")
    row = attribute_events(events, settings).iloc[0]
    return {name: None if pd.isna(value) else value for name, value in row.items()}


# (id, referrer, source, medium, channel, term)
REFERRERS = [
    # search engines, incl. image/news hosts and country domains
    ("google-com", "https://www.google.com/", "google.com", "organic", "Organic Search", "none"),
    ("google-de", "https://www.google.de/", "google.de", "organic", "Organic Search", "none"),
    ("google-co-uk-with-q", "https://www.google.co.uk/search?q=red+shoes", "google.co.uk", "organic", "Organic Search", "red shoes"),
    ("google-images", "https://images.google.com/", "google.com", "organic", "Organic Search", "none"),
    ("google-news-co-uk", "https://news.google.co.uk/articles/x", "google.co.uk", "organic", "Organic Search", "none"),
    ("google-port-443", "https://www.google.com:443/", "google.com", "organic", "Organic Search", "none"),
    ("google-empty-q", "https://www.google.com/search?q=", "google.com", "organic", "Organic Search", "none"),
    ("bing", "https://www.bing.com/search?q=running+shoes&form=QBLH", "bing.com", "organic", "Organic Search", "running shoes"),
    ("duckduckgo", "https://duckduckgo.com/", "duckduckgo.com", "organic", "Organic Search", "none"),
    ("yandex-ru-text", "https://yandex.ru/search/?text=%D0%BA%D0%BE%D1%82&lr=213", "yandex.ru", "organic", "Organic Search", "кот"),
    ("baidu-wd", "https://www.baidu.com/s?ie=utf-8&wd=%E6%B5%8B%E8%AF%95", "baidu.com", "organic", "Organic Search", "测试"),
    ("yahoo-search-p", "https://search.yahoo.com/search?p=blue+widgets&fr=yfp", "yahoo.com", "organic", "Organic Search", "blue widgets"),
    ("ecosia", "https://www.ecosia.org/search?q=trees", "ecosia.org", "organic", "Organic Search", "trees"),
    ("naver-search", "https://search.naver.com/search.naver?query=%EA%B0%80%EB%B0%A9", "naver.com", "organic", "Organic Search", "가방"),
    ("seznam", "https://www.seznam.cz/", "seznam.cz", "organic", "Organic Search", "none"),
    ("brave", "https://search.brave.com/search?q=privacy", "brave.com", "organic", "Organic Search", "privacy"),
    ("startpage", "https://www.startpage.com/do/search?query=widgets", "startpage.com", "organic", "Organic Search", "widgets"),
    ("google-app", "android-app://com.google.android.googlequicksearchbox/https/www.google.com",
     "com.google.android.googlequicksearchbox", "organic", "Organic Search", "none"),
    # social networks and their apps
    ("t-co", "https://t.co/chrgFZDb", "t.co", "social", "Organic Social", "none"),
    ("l-facebook", "https://l.facebook.com/l.php?u=https%3A%2F%2Fwww.mysite.com%2F", "facebook.com", "social", "Organic Social", "none"),
    ("lm-facebook", "https://lm.facebook.com/", "facebook.com", "social", "Organic Social", "none"),
    ("m-facebook", "https://m.facebook.com/", "facebook.com", "social", "Organic Social", "none"),
    ("linkedin", "https://www.linkedin.com/feed/", "linkedin.com", "social", "Organic Social", "none"),
    ("lnkd-in", "https://lnkd.in/eXaMpLe", "lnkd.in", "social", "Organic Social", "none"),
    ("reddit", "https://www.reddit.com/r/analytics/", "reddit.com", "social", "Organic Social", "none"),
    ("old-reddit", "https://old.reddit.com/", "reddit.com", "social", "Organic Social", "none"),
    ("x-com", "https://x.com/", "x.com", "social", "Organic Social", "none"),
    ("instagram", "https://l.instagram.com/?u=x", "instagram.com", "social", "Organic Social", "none"),
    ("hacker-news", "https://news.ycombinator.com/item?id=1", "ycombinator.com", "social", "Organic Social", "none"),
    ("pinterest-de", "https://www.pinterest.de/pin/1/", "pinterest.de", "social", "Organic Social", "none"),
    ("social-has-no-term", "https://www.facebook.com/search/?q=shoes", "facebook.com", "social", "Organic Social", "none"),
    ("facebook-app", "android-app://com.facebook.katana", "com.facebook.katana", "social", "Organic Social", "none"),
    ("twitter-app", "android-app://com.twitter.android/", "com.twitter.android", "social", "Organic Social", "none"),
    ("linkedin-app", "android-app://com.linkedin.android/", "com.linkedin.android", "social", "Organic Social", "none"),
    ("slack-app", "android-app://com.slack/", "com.slack", "social", "Organic Social", "none"),
    ("app-variant-id", "android-app://com.facebook.katana.beta/", "com.facebook.katana.beta", "social", "Organic Social", "none"),
    ("app-id-keeps-its-case", "android-app://com.Slack", "com.Slack", "social", "Organic Social", "none"),
    # video and shopping sites: referral medium, GA4's Organic Video / Organic Shopping
    ("youtube", "https://www.youtube.com/watch?v=1", "youtube.com", "referral", "Organic Video", "none"),
    ("m-youtube", "https://m.youtube.com/", "youtube.com", "referral", "Organic Video", "none"),
    ("vimeo", "https://vimeo.com/1", "vimeo.com", "referral", "Organic Video", "none"),
    ("youtube-app", "android-app://com.google.android.youtube", "com.google.android.youtube", "referral", "Organic Video", "none"),
    ("amazon", "https://www.amazon.com/dp/B000", "amazon.com", "referral", "Organic Shopping", "none"),
    ("ebay-de", "https://www.ebay.de/itm/1", "ebay.de", "referral", "Organic Shopping", "none"),
    # webmail versus the same company's search engine
    ("gmail", "https://mail.google.com/mail/u/0/", "google.com", "email", "Email", "none"),
    ("outlook-live", "https://outlook.live.com/mail/0/inbox", "live.com", "email", "Email", "none"),
    ("outlook-office", "https://outlook.office.com/mail/", "office.com", "email", "Email", "none"),
    ("outlook-office365", "https://outlook.office365.com/owa/", "office365.com", "email", "Email", "none"),
    ("outlook-safelinks", "https://eur01.safelinks.protection.outlook.com/?url=x", "outlook.com", "email", "Email", "none"),
    ("yahoo-mail", "https://mail.yahoo.com/d/folders/1", "yahoo.com", "email", "Email", "none"),
    ("yahoo-mail-country", "https://fr.mail.yahoo.com/", "yahoo.com", "email", "Email", "none"),
    ("yandex-mail", "https://mail.yandex.ru/?uid=1", "yandex.ru", "email", "Email", "none"),
    ("mail-ru-webmail", "https://e.mail.ru/inbox/", "mail.ru", "email", "Email", "none"),
    ("mail-ru-search", "https://go.mail.ru/search?q=tarot", "mail.ru", "organic", "Organic Search", "tarot"),
    ("naver-mail", "https://mail.naver.com/", "naver.com", "email", "Email", "none"),
    ("seznam-email", "https://email.seznam.cz/", "seznam.cz", "email", "Email", "none"),
    ("aol-mail", "https://mail.aol.com/webmail-std/en-us/suite", "aol.com", "email", "Email", "none"),
    ("proton", "https://mail.proton.me/u/0/inbox", "proton.me", "email", "Email", "none"),
    ("icloud", "https://www.icloud.com/", "icloud.com", "email", "Email", "none"),
    ("gmx-navigator", "https://navigator.gmx.net/mail", "gmx.net", "email", "Email", "none"),
    ("web-de", "https://web.de/", "web.de", "email", "Email", "none"),
    ("web-de-search", "https://suche.web.de/web?su=fahrrad", "web.de", "organic", "Organic Search", "fahrrad"),
    ("ionos", "https://email.ionos.de/appsuite/", "ionos.de", "email", "Email", "none"),
    ("orange-webmail", "https://messagerie.orange.fr/", "orange.fr", "email", "Email", "none"),
    ("orange-portal", "https://www.orange.fr/portail", "orange.fr", "referral", "Referral", "none"),
    ("free-webmail", "https://webmail.free.fr/", "free.fr", "email", "Email", "none"),
    ("sfr-webmail", "https://webmail.sfr.fr/", "sfr.fr", "email", "Email", "none"),
    ("libero", "https://mail.libero.it/appsuite/", "libero.it", "email", "Email", "none"),
    ("qq-mail", "https://wx.mail.qq.com/", "qq.com", "email", "Email", "none"),
    ("gmail-app", "android-app://com.google.android.gm/", "com.google.android.gm", "email", "Email", "none"),
    ("outlook-app", "android-app://com.microsoft.office.outlook", "com.microsoft.office.outlook", "email", "Email", "none"),
    # ad networks
    ("doubleclick", "https://ad.doubleclick.net/ddm/clk/1", "doubleclick.net", "display", "Display", "none"),
    ("googleads-doubleclick", "https://googleads.g.doubleclick.net/pagead/ads", "doubleclick.net", "display", "Display", "none"),
    ("googlesyndication", "https://tpc.googlesyndication.com/", "googlesyndication.com", "display", "Display", "none"),
    ("googleadservices", "https://www.googleadservices.com/pagead/aclk", "googleadservices.com", "display", "Display", "none"),
    ("taboola", "https://trc.taboola.com/1/", "taboola.com", "display", "Display", "none"),
    ("outbrain", "https://paid.outbrain.com/network/redir", "outbrain.com", "display", "Display", "none"),
    ("criteo", "https://cas.criteo.com/delivery/ck.php", "criteo.com", "display", "Display", "none"),
    ("adnxs", "https://ib.adnxs.com/click", "adnxs.com", "display", "Display", "none"),
    # AI assistants: referral medium, AI Assistants channel
    ("chatgpt", "https://chatgpt.com/", "chatgpt.com", "referral", "AI Assistants", "none"),
    ("chat-openai", "https://chat.openai.com/c/1", "openai.com", "referral", "AI Assistants", "none"),
    ("perplexity", "https://www.perplexity.ai/search?q=x", "perplexity.ai", "referral", "AI Assistants", "none"),
    ("claude", "https://claude.ai/chat/1", "claude.ai", "referral", "AI Assistants", "none"),
    ("gemini", "https://gemini.google.com/app", "google.com", "referral", "AI Assistants", "none"),
    ("copilot", "https://copilot.microsoft.com/", "microsoft.com", "referral", "AI Assistants", "none"),
    ("deepseek", "https://chat.deepseek.com/", "deepseek.com", "referral", "AI Assistants", "none"),
    ("chatgpt-app", "android-app://com.openai.chatgpt/", "com.openai.chatgpt", "referral", "AI Assistants", "none"),
    # any other site
    ("blog", "https://blog.example.org/post", "example.org", "referral", "Referral", "none"),
    ("wikipedia", "https://en.wikipedia.org/wiki/Marketing", "wikipedia.org", "referral", "Referral", "none"),
    ("google-docs-not-search", "https://docs.google.com/document/d/1", "google.com", "referral", "Referral", "none"),
    ("google-maps-not-search", "https://maps.google.com/", "google.com", "referral", "Referral", "none"),
    ("yahoo-news-is-a-search-engine-news-host", "https://news.yahoo.com/story", "yahoo.com", "organic", "Organic Search", "none"),
    ("unknown-site-has-no-term", "https://forum.example.net/search?q=widgets", "example.net", "referral", "Referral", "none"),
    ("github-io-private-suffix", "https://foo.github.io/post", "foo.github.io", "referral", "Referral", "none"),
    ("ip-address", "http://192.168.1.10:8080/x", "192.168.1.10", "referral", "Referral", "none"),
    ("upper-case-host", "HTTPS://WWW.Example.ORG/A", "example.org", "referral", "Referral", "none"),
    ("unknown-app", "android-app://com.example.reader/", "com.example.reader", "referral", "Referral", "none"),
]  # fmt: skip

# More referrers, written for this project: query forms, paths, country editions, redirectors and apps.
MORE_REFERRERS = [
    # search engines: the term from the engine's own parameter, whatever the path or the other parameters
    ("google-fr-imgres-term", "https://www.google.fr/imgres?imgurl=https%3A%2F%2Fshop.example%2Fa.jpg&q=chaussures+rouges&hl=fr",
     "google.fr", "organic", "Organic Search", "chaussures rouges"),
    ("google-search-no-query", "http://www.google.com/search", "google.com", "organic", "Organic Search", "none"),
    ("google-client-then-q", "https://www.google.com/search?client=firefox-b-d&q=analytics+pipeline",
     "google.com", "organic", "Organic Search", "analytics pipeline"),
    ("google-com-au-padded-term", "https://www.google.com.au/search?q=+++kangaroo+facts++", "google.com.au", "organic",
     "Organic Search", "kangaroo facts"),
    ("google-co-jp", "https://www.google.co.jp/search?q=%E5%A4%A9%E6%B0%97", "google.co.jp", "organic", "Organic Search", "天気"),
    ("google-scholar", "https://scholar.google.de/scholar?q=attribution+models", "google.de", "organic", "Organic Search",
     "attribution models"),
    ("yahoo-de-images", "https://de.images.search.yahoo.com/search/images?p=fahrrad+helm&fr=yfp-t", "yahoo.com", "organic",
     "Organic Search", "fahrrad helm"),
    ("yahoo-es-path-params", "https://es.search.yahoo.com/search;_ylt=AbCdE?p=zapatillas+running&fr=yfp",
     "yahoo.com", "organic", "Organic Search", "zapatillas running"),
    ("yahoo-japan", "https://search.yahoo.co.jp/search?p=%E5%A4%A9%E6%B0%97&ei=UTF-8", "yahoo.co.jp", "organic",
     "Organic Search", "天気"),
    ("bing-images", "https://www.bing.com/images/search?q=mountain+bike&form=HDRSC2", "bing.com", "organic",
     "Organic Search", "mountain bike"),
    ("bing-cn", "https://cn.bing.com/search?q=%E6%95%B0%E6%8D%AE", "bing.com", "organic", "Organic Search", "数据"),
    ("aol-search", "https://search.aol.com/aol/search?q=weather+radar&s_it=sb-top", "aol.com", "organic",
     "Organic Search", "weather radar"),
    ("aol-co-uk-query", "https://search.aol.co.uk/aol/search?query=garden+sheds", "aol.co.uk", "organic",
     "Organic Search", "garden sheds"),
    ("ask", "https://www.ask.com/web?q=how+to+knit&qo=homepageSearchBox", "ask.com", "organic", "Organic Search",
     "how to knit"),
    ("yandex-images", "https://yandex.ru/images/search?from=tabbar&text=%D0%BA%D0%BE%D1%82%D0%B8%D0%BA%D0%B8",
     "yandex.ru", "organic", "Organic Search", "котики"),
    ("yandex-com-tr", "https://yandex.com.tr/search/?text=hava+durumu", "yandex.com.tr", "organic", "Organic Search",
     "hava durumu"),
    ("ya-ru", "https://ya.ru/search/?text=test", "ya.ru", "organic", "Organic Search", "test"),
    ("duckduckgo-html", "https://html.duckduckgo.com/html/?q=privacy+tools", "duckduckgo.com", "organic",
     "Organic Search", "privacy tools"),
    ("startpage-q", "https://www.startpage.com/do/dsearch?q=linux", "startpage.com", "organic", "Organic Search", "linux"),
    ("qwant", "https://www.qwant.com/?q=recette+cr%C3%AApes&t=web", "qwant.com", "organic", "Organic Search",
     "recette crêpes"),
    ("kagi", "https://kagi.com/search?q=rust+book", "kagi.com", "organic", "Organic Search", "rust book"),
    ("mojeek", "https://www.mojeek.com/search?q=independent+search", "mojeek.com", "organic", "Organic Search",
     "independent search"),
    ("sogou", "https://www.sogou.com/web?query=%E5%A4%A9%E6%B0%94", "sogou.com", "organic", "Organic Search", "天气"),
    ("so-com", "https://www.so.com/s?q=hello", "so.com", "organic", "Organic Search", "hello"),
    ("baidu-mobile-word", "https://m.baidu.com/s?word=%E6%89%8B%E6%9C%BA", "baidu.com", "organic", "Organic Search", "手机"),
    ("daum", "https://search.daum.net/search?w=tot&q=%EB%82%A0%EC%94%A8", "daum.net", "organic", "Organic Search", "날씨"),
    ("naver-mobile", "https://m.search.naver.com/search.naver?query=%EB%A7%9B%EC%A7%91", "naver.com", "organic",
     "Organic Search", "맛집"),
    ("seznam-search", "https://search.seznam.cz/?q=po%C4%8Das%C3%AD", "seznam.cz", "organic", "Organic Search", "počasí"),
    ("mail-ru-search-cyrillic", "https://go.mail.ru/search?fm=1&q=%D0%BF%D0%BE%D0%B3%D0%BE%D0%B4%D0%B0", "mail.ru",
     "organic", "Organic Search", "погода"),
    ("rambler", "https://nova.rambler.ru/search?query=%D0%BD%D0%BE%D0%B2%D0%BE%D1%81%D1%82%D0%B8", "rambler.ru",
     "organic", "Organic Search", "новости"),
    ("metager", "https://metager.org/meta/meta.ger3?eingabe=datenschutz", "metager.org", "organic", "Organic Search",
     "datenschutz"),
    ("swisscows", "https://swisscows.com/en/web?query=alps", "swisscows.com", "organic", "Organic Search", "alps"),
    ("coccoc", "https://coccoc.com/search?query=th%E1%BB%9Di+ti%E1%BA%BFt", "coccoc.com", "organic", "Organic Search",
     "thời tiết"),
    ("gmx-search", "https://suche.gmx.net/web?q=wetter", "gmx.net", "organic", "Organic Search", "wetter"),
    ("bing-app", "android-app://com.microsoft.bing", "com.microsoft.bing", "organic", "Organic Search", "none"),
    # social networks, messengers and link redirectors
    ("twitter-com", "https://twitter.com/someone/status/1", "twitter.com", "social", "Organic Social", "none"),
    ("facebook-l-php", "https://www.facebook.com/l.php?u=https%3A%2F%2Fwww.mysite.com%2F&h=AT0", "facebook.com", "social",
     "Organic Social", "none"),
    ("ok-ru", "https://ok.ru/dk?cmd=logExternal&st.link=x", "ok.ru", "social", "Organic Social", "none"),
    ("tumblr-blog-subdomain", "https://someblog.tumblr.com/post/1", "tumblr.com", "social", "Organic Social", "none"),
    ("vk-away", "https://away.vk.com/away.php?to=https%3A%2F%2Fwww.mysite.com", "vk.com", "social", "Organic Social", "none"),
    ("mastodon", "https://mastodon.social/@someone/1", "mastodon.social", "social", "Organic Social", "none"),
    ("bluesky", "https://bsky.app/profile/someone", "bsky.app", "social", "Organic Social", "none"),
    ("threads-redirect", "https://l.threads.com/?u=x", "threads.com", "social", "Organic Social", "none"),
    ("telegram", "https://t.me/somechannel/1", "t.me", "social", "Organic Social", "none"),
    ("slack-redirect", "https://slack-redir.net/link?url=x", "slack-redir.net", "social", "Organic Social", "none"),
    ("teams", "https://teams.microsoft.com/l/message/1", "microsoft.com", "social", "Organic Social", "none"),
    ("weibo-short", "https://t.cn/A6abc", "t.cn", "social", "Organic Social", "none"),
    ("baidu-tieba-not-search", "https://tieba.baidu.com/p/1", "baidu.com", "social", "Organic Social", "none"),
    ("whatsapp-app", "android-app://com.whatsapp/", "com.whatsapp", "social", "Organic Social", "none"),
    # webmail hosts, link dereferrers and mail apps
    ("bluewin-mail", "https://email.bluewin.ch/mail/", "bluewin.ch", "email", "Email", "none"),
    ("gmx-dereferrer", "https://deref-gmx.net/mail/client/abc/dereferrer/?redirectUrl=x", "deref-gmx.net", "email",
     "Email", "none"),
    ("web-de-dereferrer", "https://deref-web.de/mail/client/abc/dereferrer/", "deref-web.de", "email", "Email", "none"),
    ("yahoo-japan-mail", "https://mail.yahoo.co.jp/", "yahoo.co.jp", "email", "Email", "none"),
    ("hotmail", "https://www.hotmail.com/", "hotmail.com", "email", "Email", "none"),
    ("zoho-eu", "https://mail.zoho.eu/zm/", "zoho.eu", "email", "Email", "none"),
    ("tuta", "https://app.tuta.com/mail/", "tuta.com", "email", "Email", "none"),
    ("netease-163", "https://mail.163.com/js6/main.jsp", "163.com", "email", "Email", "none"),
    ("kakao-mail-not-social", "https://mail.kakao.com/", "kakao.com", "email", "Email", "none"),
    ("onet-mail-not-search", "https://poczta.onet.pl/", "onet.pl", "email", "Email", "none"),
    ("t-online-mail", "https://email.t-online.de/em", "t-online.de", "email", "Email", "none"),
    ("samsung-email-app", "android-app://com.samsung.android.email.provider", "com.samsung.android.email.provider",
     "email", "Email", "none"),
    ("yandex-mail-app", "android-app://ru.yandex.mail", "ru.yandex.mail", "email", "Email", "none"),
    # webmail and portal search by rule (pipeline/data/README.md): mail labels, dereferrers, numbered families
    ("orange-numbered-webmail", "https://mail07.orange.fr/webmail/fr_FR/inbox.html", "orange.fr", "email", "Email", "none"),
    ("ionos-business-mail", "https://mailbusiness.ionos.es/appsuite/", "ionos.es", "email", "Email", "none"),
    ("yahoo-mail-app-host", "https://x7k2p-c.c.yom.mail.yahoo.net/om/api/1.0/view.html", "yahoo.net", "email", "Email",
     "none"),
    ("1und1-numbered-dereferrer", "https://deref-1und1-02.de/mail/client/x/dereferrer/", "deref-1und1-02.de", "email",
     "Email", "none"),
    ("swisscom-numbered-webmail", "https://rich-v02.bluewin.ch/cp/applink/mail/x", "bluewin.ch", "email", "Email", "none"),
    ("aol-portal-search-host", "https://aolsearch.aol.co.uk/aol/search?s_it=x&q=garden+sheds", "aol.co.uk", "organic",
     "Organic Search", "garden sheds"),
    ("ask-toolbar-searchfor", "http://search.tb.ask.com/search/GGmain.jhtml?st=hp&searchfor=knitting+wool", "ask.com",
     "organic", "Organic Search", "knitting wool"),
    ("1und1-portal-search", "https://suche.1und1.de/web?q=wetter", "1und1.de", "organic", "Organic Search", "wetter"),
    ("voila", "https://search.voila.fr/?kw=meteo", "voila.fr", "organic", "Organic Search", "meteo"),
    ("price-comparison-is-shopping", "https://www.pricerunner.co.uk/search?q=kettle", "pricerunner.co.uk", "referral",
     "Organic Shopping", "none"),
    # ad networks
    ("doubleclick-pubads", "https://securepubads.g.doubleclick.net/gampad/ads", "doubleclick.net", "display", "Display",
     "none"),
    ("adsense-for-search", "https://syndicatedsearch.goog/afs/ads?q=x", "syndicatedsearch.goog", "display", "Display",
     "none"),
    ("google-adservice-not-search", "https://adservice.google.com/ddm/fls/", "google.com", "display", "Display", "none"),
    ("yandex-ads-not-search", "https://yabs.yandex.ru/count/abc", "yandex.ru", "display", "Display", "none"),
    ("amazon-ads", "https://aax-eu.amazon-adsystem.com/x/c/abc", "amazon-adsystem.com", "display", "Display", "none"),
    # video, shopping and AI sites
    ("bilibili", "https://www.bilibili.com/video/BV1", "bilibili.com", "referral", "Organic Video", "none"),
    ("amazon-de", "https://www.amazon.de/dp/B000", "amazon.de", "referral", "Organic Shopping", "none"),
    ("yandex-market-not-search", "https://market.yandex.ru/product/1", "yandex.ru", "referral", "Organic Shopping", "none"),
    ("mistral", "https://chat.mistral.ai/chat/1", "mistral.ai", "referral", "AI Assistants", "none"),
    # ordinary sites, incl. non-search properties of search companies
    ("mail-ru-portal", "https://mail.ru/", "mail.ru", "referral", "Referral", "none"),
    ("google-translate", "https://translate.google.com/?sl=auto&q=x", "google.com", "referral", "Referral", "none"),
    ("naver-news", "https://news.naver.com/main/1", "naver.com", "organic", "Organic Search", "none"),
    ("yahoo-finance", "https://finance.yahoo.com/quote/X?p=X", "yahoo.com", "referral", "Referral", "none"),
    ("s3-bucket-under-private-suffix", "https://mybucket.s3.amazonaws.com/index.html", "mybucket.s3.amazonaws.com",
     "referral", "Referral", "none"),
    ("google-url-redirect", "https://www.google.com/url?q=https://www.mysite.com/&sa=t", "google.com", "organic",
     "Organic Search", "none"),
    ("idn-host-keeps-its-form", "https://bücher.example/", "bücher.example", "referral", "Referral", "none"),
    ("punycode-host-keeps-its-form", "https://xn--bcher-kva.example/", "xn--bcher-kva.example", "referral", "Referral", "none"),
]  # fmt: skip
ALL_REFERRERS = REFERRERS + MORE_REFERRERS


@pytest.mark.parametrize(("referrer", "source", "medium", "channel", "term"), [r[1:] for r in ALL_REFERRERS],
                         ids=[r[0] for r in ALL_REFERRERS])  # fmt: skip
def test_referrer(referrer, source, medium, channel, term):
    row = attribute(referrer=referrer)
    assert (row["referrer_source"], row["source"], row["medium"], row["channel"], row["term"]) == (
        source, source, medium, channel, term)  # fmt: skip
    assert (row["campaign"], row["content"], row["campaign_key"]) == ("none", "none", "")



# ---- referrers that count as no referrer -------------------------------------------------------------------

DIRECT = {"referrer_source": None, "source": "direct", "medium": "none", "campaign": "none", "content": "none",
          "term": "none", "channel": "Direct"}  # fmt: skip


@pytest.mark.parametrize(
    ("page_url", "referrer"),
    [
        pytest.param(PAGE, "https://blog.mysite.com/post", id="same-registered-domain"),
        pytest.param(PAGE, "https://www.mysite.com/search?q=shoes", id="same-host-search-page"),
        pytest.param(PAGE, "https://mysite-checkout.com/cart", id="own-domain"),
        pytest.param(PAGE, "https://pay.mysite-checkout.com/", id="own-domain-subdomain"),
        pytest.param("https://shop.example.co.uk/", "https://www.example.co.uk/", id="same-domain-under-co-uk"),
        pytest.param(PAGE, "https://www.paypal.com/checkoutnow", id="excluded-paypal"),
        pytest.param(PAGE, "https://checkout.stripe.com/c/pay", id="excluded-stripe-subdomain"),
        pytest.param(PAGE, None, id="na"),
        pytest.param(PAGE, "", id="empty"),
        pytest.param(PAGE, "   ", id="blank"),
        pytest.param(PAGE, "not a url", id="unparseable"),
        pytest.param(PAGE, "https://", id="no-host"),
        pytest.param(PAGE, "file:///C:/Users/me/page.html", id="file-scheme"),
        pytest.param(PAGE, "chrome-extension://abcdef/popup.html", id="extension-scheme"),
        pytest.param(PAGE, "about:blank", id="about-blank"),
        pytest.param(PAGE, "android-app://", id="app-without-id"),
        pytest.param("https://bücher.de/a", "https://xn--bcher-kva.de/b", id="idn-page-punycode-referrer"),
        pytest.param("https://xn--bcher-kva.de/a", "https://BÜCHER.de/b", id="punycode-page-idn-referrer"),
    ],
)
def test_no_external_referrer_means_direct(page_url, referrer):
    row = attribute(page_url=page_url, referrer=referrer)
    assert {k: row[k] for k in DIRECT} == DIRECT


def test_exclusion_matches_whole_labels_only():
    row = attribute(referrer="https://notpaypal.com/")
    assert (row["referrer_source"], row["source"], row["channel"]) == ("notpaypal.com", "notpaypal.com", "Referral")


def test_excluded_referrer_leaves_utm_attribution():
    row = attribute(page_url=PAGE + "?utm_source=newsletter&utm_medium=email", referrer="https://www.paypal.com/")
    assert (row["referrer_source"], row["source"], row["medium"], row["channel"]) == (
        None, "newsletter", "email", "Email")  # fmt: skip


def test_custom_referral_exclusions_replace_defaults():
    settings = Settings(referral_exclusions=["Partner.Example"])
    assert attribute(referrer="https://go.partner.example/x", settings=settings)["source"] == "direct"
    assert attribute(referrer="https://www.paypal.com/", settings=settings)["source"] == "paypal.com"


def test_github_io_sites_are_different_domains():
    row = attribute(page_url="https://foo.github.io/", referrer="https://bar.github.io/post")
    assert (row["referrer_source"], row["source"], row["medium"]) == ("bar.github.io", "bar.github.io", "referral")


def test_github_io_same_site_is_internal():
    assert attribute(page_url="https://foo.github.io/a", referrer="https://foo.github.io/b")["source"] == "direct"


# ---- click ids ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("query", "source"),
    [("gclid=Cj0KCQ", "google.com"), ("gbraid=0AAAA", "google.com"), ("wbraid=CkAB", "google.com"),
     ("dclid=CJ3x", "google.com"), ("msclkid=4f1e", "bing.com")],
    ids=["gclid", "gbraid", "wbraid", "dclid", "msclkid"],
)  # fmt: skip
def test_click_id_alone(query, source):
    row = attribute(page_url=f"{PAGE}?{query}")
    assert (row["source"], row["medium"], row["campaign"], row["channel"]) == (source, "cpc", "none", "Paid Search")
    assert row["page"] == PAGE
    assert row["campaign_key"] == query


def test_click_id_beats_search_referrer():
    row = attribute(page_url=f"{PAGE}?gclid=abc", referrer="https://www.google.de/")
    assert (row["referrer_source"], row["source"], row["medium"], row["channel"]) == (
        "google.de", "google.com", "cpc", "Paid Search")  # fmt: skip


def test_utm_overrides_click_id():
    row = attribute(page_url=f"{PAGE}?gclid=abc&utm_source=newsletter&utm_medium=email")
    assert (row["source"], row["medium"], row["channel"]) == ("newsletter", "email", "Email")


def test_utm_source_with_click_id_keeps_cpc_medium():
    row = attribute(page_url=f"{PAGE}?utm_source=facebook&gclid=abc")
    assert (row["source"], row["medium"], row["channel"]) == ("facebook", "cpc", "Paid Social")


def test_utm_medium_with_click_id_keeps_click_source():
    row = attribute(page_url=f"{PAGE}?utm_medium=display&msclkid=abc")
    assert (row["source"], row["medium"], row["channel"]) == ("bing.com", "display", "Display")


def test_google_click_id_wins_over_msclkid():
    assert attribute(page_url=f"{PAGE}?msclkid=a&gclid=b")["source"] == "google.com"


def test_empty_click_id_is_ignored():
    row = attribute(page_url=f"{PAGE}?gclid=")
    assert (row["source"], row["medium"], row["campaign_key"]) == ("direct", "none", "")


def test_fbclid_is_stripped_but_not_a_campaign():
    row = attribute(page_url=f"{PAGE}?fbclid=IwAR0", referrer="https://l.facebook.com/")
    assert (row["page"], row["campaign_key"], row["source"], row["medium"]) == (PAGE, "", "facebook.com", "social")


# ---- UTM parameters ---------------------------------------------------------------------------------------

def test_utm_overrides_referrer_source_and_medium():
    row = attribute(page_url=f"{PAGE}?utm_source=facebook&utm_medium=paid_social&utm_campaign=spring",
                    referrer="https://www.google.com/")  # fmt: skip
    assert (row["referrer_source"], row["source"], row["medium"], row["campaign"], row["channel"]) == (
        "google.com", "facebook", "paid_social", "spring", "Paid Social")  # fmt: skip


def test_utm_values_are_decoded_trimmed_and_keep_case():
    row = attribute(page_url=f"{PAGE}?utm_source=News%20Letter&utm_medium=E-Mail&utm_campaign=%20Spring+Sale%202024%20"
                             "&utm_content=Hero%2FBanner&utm_term=Red+Shoes")  # fmt: skip
    assert (row["source"], row["medium"], row["campaign"], row["content"], row["term"]) == (
        "News Letter", "E-Mail", "Spring Sale 2024", "Hero/Banner", "Red Shoes")  # fmt: skip
    assert row["channel"] == "Email"


def test_empty_utm_source_counts_as_absent():
    # the source comes from the referrer, whose class (search) gives the category: rule 12 before Email (rule 14)
    row = attribute(page_url=f"{PAGE}?utm_source=&utm_medium=email", referrer="https://www.google.com/")
    assert (row["source"], row["medium"], row["channel"]) == ("google.com", "email", "Organic Search")


def test_blank_utm_source_counts_as_absent():
    assert attribute(page_url=f"{PAGE}?utm_source=%20+")["source"] == "direct"


def test_utm_medium_without_source_or_referrer():
    row = attribute(page_url=f"{PAGE}?utm_medium=email&utm_campaign=weekly")
    assert (row["source"], row["medium"], row["campaign"], row["channel"]) == ("direct", "email", "weekly", "Email")


def test_utm_source_without_medium_is_unassigned():
    row = attribute(page_url=f"{PAGE}?utm_source=newsletter")
    assert (row["source"], row["medium"], row["channel"]) == ("newsletter", "none", "Unassigned")


def test_utm_campaign_only_keeps_referrer_source():
    row = attribute(page_url=f"{PAGE}?utm_campaign=launch", referrer="https://t.co/x")
    assert (row["source"], row["medium"], row["campaign"], row["channel"]) == (
        "t.co", "social", "launch", "Organic Social")  # fmt: skip


def test_term_from_search_referrer_query():
    assert attribute(referrer="https://www.bing.com/search?q=%20blue+widgets%20")["term"] == "blue widgets"


def test_utm_term_beats_search_query():
    assert attribute(page_url=f"{PAGE}?utm_term=brand", referrer="https://www.google.com/search?q=x")["term"] == "brand"


def test_search_term_kept_under_utm_source():
    row = attribute(page_url=f"{PAGE}?utm_source=google&utm_medium=cpc", referrer="https://www.google.com/search?q=shoes")
    assert (row["source"], row["term"], row["channel"]) == ("google", "shoes", "Paid Search")


def test_search_term_from_internal_referrer_is_ignored():
    assert attribute(referrer="https://www.mysite.com/search?q=shoes")["term"] == "none"


def test_first_non_empty_duplicate_utm_value_wins():
    assert attribute(page_url=f"{PAGE}?utm_source=&utm_source=b&utm_source=c")["source"] == "b"


def test_upper_case_utm_name_is_read():
    assert attribute(page_url=f"{PAGE}?UTM_SOURCE=Partner&Utm_Medium=affiliate")["channel"] == "Affiliates"


def test_chatgpt_utm_source_is_ai_assistants():
    row = attribute(page_url=f"{PAGE}?utm_source=chatgpt.com")
    assert (row["source"], row["medium"], row["channel"]) == ("chatgpt.com", "none", "AI Assistants")


@pytest.mark.parametrize(("medium", "channel"), [("display", "Display"), ("ppc", "Paid Other")])
def test_snowplow_example_utm(medium, channel):
    assert attribute(page_url=f"{PAGE}?utm_source=google-ad&utm_medium={medium}")["channel"] == channel


def test_cpc_from_search_source_is_paid_search():
    assert attribute(page_url=f"{PAGE}?utm_source=bing&utm_medium=cpc")["channel"] == "Paid Search"


# ---- campaign_key -----------------------------------------------------------------------------------------

def key(query: str) -> str:
    return attribute(page_url=f"{PAGE}?{query}")["campaign_key"]


def test_campaign_key_form():
    assert key("utm_source=google&a=1&utm_campaign=spring") == "utm_campaign=spring&utm_source=google"


def test_campaign_key_ignores_parameter_order():
    assert key("utm_medium=cpc&utm_source=google") == key("utm_source=google&utm_medium=cpc")


def test_campaign_key_decodes_and_trims_values():
    assert key("utm_campaign=spring+sale") == key("utm_campaign=%20spring%20sale%20") == "utm_campaign=spring%20sale"


def test_campaign_key_ignores_empty_values():
    assert key("utm_source=x&utm_medium=&gclid=") == "utm_source=x"


def test_campaign_key_keeps_case():
    assert key("utm_source=Google") != key("utm_source=google")


def test_campaign_key_covers_every_utm_and_click_id():
    assert key("utm_id=7&wbraid=w&gbraid=g&dclid=d&msclkid=m&gclid=c") == (
        "dclid=d&gbraid=g&gclid=c&msclkid=m&utm_id=7&wbraid=w")  # fmt: skip


def test_campaign_key_empty_without_campaign_params():
    assert key("a=1&fbclid=x&ttclid=y&_ga=z") == ""


def test_campaign_key_values_cannot_collide():
    assert key("utm_campaign=a%26utm_term%3Db") != key("utm_campaign=a&utm_term=b")


NAMES = ["utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term", "utm_id", "UTM_Source", "gclid",
         "msclkid", "dclid", "fbclid", "a", "q"]  # fmt: skip
QUERY = st.lists(st.tuples(st.sampled_from(NAMES), st.text(alphabet="aB +-_.%2Cé~/", max_size=6)), max_size=6)


@hypothesis_settings(max_examples=60, deadline=None)
@given(st.lists(QUERY, min_size=1, max_size=8))
def test_vectorised_campaign_matches_the_scalar_reference(queries):
    urls = [f"{PAGE}?" + "&".join(f"{name}={value}" for name, value in query) for query in queries]
    result = attribute_events(pd.DataFrame({"page_url": urls, "referrer": [None] * len(urls)}, dtype="str"), SETTINGS)
    for url, (_, row) in zip(urls, result.iterrows(), strict=True):
        params = campaign_params(split_page_url(url).tracking)
        click = "google.com" if {"gclid", "dclid"} & params.keys() else "bing.com" if "msclkid" in params else None
        assert row["campaign_key"] == campaign_key(params)
        assert row["source"] == params.get("utm_source", click or "direct")
        assert row["medium"] == params.get("utm_medium", "cpc" if click else "none")
        assert (row["campaign"], row["content"], row["term"]) == tuple(
            params.get(f"utm_{f}", "none") for f in ("campaign", "content", "term"))  # fmt: skip


# ---- the frame as a whole ---------------------------------------------------------------------------------

def test_output_keeps_index_and_has_the_columns():
    events = pd.DataFrame({"page_url": [PAGE, PAGE + "?utm_source=x"], "referrer": [None, "https://t.co/"]},
                          index=pd.Index(["e7", "e3"], name="event_id"), dtype="str")  # fmt: skip
    result = attribute_events(events, SETTINGS)
    assert list(result.columns) == OUTPUT_COLUMNS
    assert list(result.index) == ["e7", "e3"] and result.index.name == "event_id"
    assert all(dtype == "str" for dtype in result.dtypes)


def test_page_is_normalised():
    row = attribute(page_url="HTTPS://WWW.MySite.com:443/Landing?utm_source=x&id=3#top")
    assert row["page"] == "https://www.mysite.com/Landing?id=3"


def test_na_page_url_gives_na_page_and_direct():
    row = attribute(page_url=None, referrer="https://www.google.com/")
    assert (row["page"], row["source"], row["channel"]) == (None, "google.com", "Organic Search")


def test_empty_frame():
    result = attribute_events(pd.DataFrame({"page_url": [], "referrer": []}, dtype="str"), SETTINGS)
    assert list(result.columns) == OUTPUT_COLUMNS and len(result) == 0


def test_frame_equals_row_by_row():
    pages = [PAGE, f"{PAGE}?gclid=1", f"{PAGE}?utm_source=a&utm_medium=cpc", "https://blog.mysite.com/x", None]
    referrers = [None, "https://www.google.com/search?q=x", "https://mail.google.com/", "https://www.mysite.com/",
                 "android-app://com.slack", "https://www.paypal.com/"]  # fmt: skip
    combos = [(p, r) for p in pages for r in referrers]
    events = pd.DataFrame(combos * 2, columns=["page_url", "referrer"], dtype="str")
    together = attribute_events(events, SETTINGS)
    for i, (page_url, referrer) in enumerate(combos * 2):
        alone = attribute(page_url=page_url, referrer=referrer)
        assert {k: None if pd.isna(v) else v for k, v in together.iloc[i].items()} == alone


# ---- registered domains -----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("news.google.co.uk", "google.co.uk"), ("www.Example.COM", "example.com"), ("foo.github.io", "foo.github.io"),
        ("a.b.foo.github.io", "foo.github.io"), ("github.io", "github.io"), ("co.uk", "co.uk"),
        ("192.168.0.1", "192.168.0.1"), ("[2001:db8::1]", "2001:db8::1"), ("localhost", "localhost"),
        ("example.com.", "example.com"), ("", None),
    ],
)  # fmt: skip
def test_registered_domain(host, expected):
    assert registered_domain(host) == expected
