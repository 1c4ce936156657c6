//! The crawler over a fixture web: watched RSS, Atom (relative links under xml:base), JSON Feed
//! and pages, a referrer log with good, spam, own-site, search-engine and garbage lines; the
//! second crawl is conditional and re-reads nothing; reverify updates, deletes and keeps; the
//! schedule runs a crawl inside `serve` with no command.

mod support;
use support::*;

fn home_with_watches() -> Home {
    let home = Home::new("");
    let log = home.dir.path().join("access.log");
    std::fs::write(&log, "").unwrap();
    let w = |p: &str| home.web.url(p);
    home.write_config(&format!(
        r#"
[[watch]]
url = "{rss}"
[[watch]]
url = "{atom}"
kind = "feed"
[[watch]]
url = "{json}"
[[watch]]
url = "{page}"
kind = "page"

[refback]
access_logs = ["{log}"]
"#,
        rss = w("/friend/rss.xml"),
        atom = w("/atom/feed.xml"),
        json = w("/json/feed.json"),
        page = w("/links.html"),
        log = log.display()
    ));
    home
}

fn rss(home: &Home, items: &[(&str, &str)]) -> Vec<u8> {
    let items: String = items
        .iter()
        .map(|(path, html)| {
            format!(
                "<item><title>Item {path}</title><link>{}</link><guid>{}</guid><description>{}</description></item>",
                home.web.url(path),
                home.web.url(path),
                html.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
            )
        })
        .collect();
    format!(r#"<?xml version="1.0"?><rss version="2.0"><channel><title>Friend</title><link>{}</link><description>d</description>{items}</channel></rss>"#, home.web.url("/friend/")).into_bytes()
}

#[test]
fn watched_feeds_pages_and_referrer_logs_become_mentions_once() {
    let home = home_with_watches();
    let post = home.post_url();
    let link = format!("<p>I liked <a href=\"{post}\">this</a>.</p>");
    home.web.set(
        "/friend/rss.xml",
        Fixture::with_type(
            "application/rss+xml",
            &rss(
                &home,
                &[
                    ("/friend/p1", &link),
                    (
                        "/friend/p2",
                        "<p>unrelated <a href=\"https://x.example/\">x</a></p>",
                    ),
                ],
            ),
        )
        .etag("\"rss-v1\""),
    );
    home.linking_page("/friend/p1", "Friend post one");
    let atom = format!(
        r#"<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom" xml:base="{base}"><title>Atom friend</title><id>urn:x</id><updated>2026-01-01T00:00:00Z</updated>
        <entry><title>Relative</title><id>urn:x:1</id><updated>2026-01-01T00:00:00Z</updated><link href="entries/1"/>
        <content type="html">&lt;p&gt;See &lt;a href="../blog/2024/hello/"&gt;Bob&lt;/a&gt;&lt;/p&gt;</content></entry></feed>"#,
        base = home.web.url("/atomsite/")
    );
    home.web.set(
        "/atom/feed.xml",
        Fixture::with_type("application/atom+xml", atom.as_bytes()),
    );
    home.source(
        "/atomsite/entries/1",
        "<p>The page itself shows only an excerpt.</p>",
    );
    let json = serde_json::json!({
        "version": "https://jsonfeed.org/version/1.1", "title": "J", "items": [
            {"id": "j1", "url": home.web.url("/json/p1"), "content_html": link}
        ]
    });
    home.web.set(
        "/json/feed.json",
        Fixture::with_type("application/feed+json", json.to_string().as_bytes()),
    );
    home.linking_page("/json/p1", "JSON friend");
    home.linking_page("/links.html", "Blogroll");

    let referer = format!("http://localhost:{}/ref/page", home.web.addr.port());
    home.web.set(
        "/ref/page",
        Fixture::html(&format!("<a href=\"{post}\">via refback</a>")),
    );
    let spam = format!("http://localhost:{}/casino", home.web.addr.port());
    home.web.set("/casino", Fixture::html("<p>buy things</p>"));
    let line = |path: &str, referer: &str| {
        format!(
            "203.0.113.9 - - [27/Nov/2026:10:00:00 +0000] \"GET {path} HTTP/1.1\" 200 512 \"{referer}\" \"Mozilla/5.0\"\n"
        )
    };
    let log_text = [
        line("/blog/2024/hello/", &referer),
        line("/blog/2024/hello/", &spam),
        line("/blog/2024/hello/", &home.web.url("/blog/")),
        line("/blog/2024/hello/", "https://www.google.com/search?q=hello"),
        line("/blog/about/", &referer),
        line("/blog/2024/hello/", "-"),
        "this is not a log line\n".to_string(),
    ]
    .concat();
    let log_path = home.dir.path().join("access.log");
    std::fs::write(&log_path, log_text).unwrap();

    let out = home.ok(&["crawl"]);
    assert!(
        out.starts_with("crawl: posts 1 · found 6 · verified 5 · rejected 1"),
        "{out}"
    );
    let mentions = home.mentions();
    let find = |source: &str| {
        mentions
            .iter()
            .find(|m| m["source"] == source)
            .unwrap_or_else(|| panic!("{source} missing: {mentions:#?}"))
    };
    assert_eq!(find(&home.web.url("/friend/p1"))["kind"], "feed");
    assert_eq!(find(&home.web.url("/friend/p1"))["status"], "verified");
    let atom_m = find(&home.web.url("/atomsite/entries/1"));
    assert_eq!(
        (atom_m["kind"].as_str(), atom_m["status"].as_str()),
        (Some("feed"), Some("verified")),
        "xml:base-relative link found via the item"
    );
    assert_eq!(find(&home.web.url("/json/p1"))["status"], "verified");
    assert_eq!(find(&home.web.url("/links.html"))["kind"], "page");
    assert_eq!(find(&referer)["kind"], "refback");
    assert_eq!(find(&referer)["status"], "verified");
    assert_eq!(find(&spam)["status"], "rejected");
    assert_eq!(
        mentions.len(),
        6,
        "own-site, search-engine, non-post and garbage lines make nothing"
    );

    // Second crawl: conditional requests, nothing re-read.
    let decisions = home.log().len();
    home.web.clear_seen();
    let out = home.ok(&["crawl"]);
    assert!(out.contains("found 0"), "{out}");
    let rss_requests = home.web.seen("/friend/rss.xml");
    assert_eq!(rss_requests.len(), 1);
    assert_eq!(rss_requests[0].headers["if-none-match"], "\"rss-v1\"");
    assert_eq!(rss_requests[0].status, 304);
    assert_eq!(
        home.web.hits("/friend/p1"),
        0,
        "an unchanged item is not fetched again"
    );
    assert_eq!(home.web.hits("/atomsite/entries/1"), 0);
    assert_eq!(
        home.web.hits("/ref/page"),
        0,
        "log lines are not read twice"
    );
    assert_eq!(home.log().len(), decisions, "no new decisions");

    // A new item in a changed feed: only it is looked at.
    home.linking_page("/friend/p3", "Friend post three");
    home.web.set(
        "/friend/rss.xml",
        Fixture::with_type(
            "application/rss+xml",
            &rss(&home, &[("/friend/p3", &link), ("/friend/p1", &link)]),
        )
        .etag("\"rss-v2\""),
    );
    // And the log rotates: a new file with one new line.
    std::fs::remove_file(&log_path).unwrap();
    let rotated_referer = format!("http://localhost:{}/ref/other", home.web.addr.port());
    home.web.set(
        "/ref/other",
        Fixture::html(&format!("<a href=\"{post}\">again</a>")),
    );
    std::fs::write(&log_path, line("/blog/2024/hello/", &rotated_referer)).unwrap();
    home.web.clear_seen();
    let out = home.ok(&["crawl"]);
    assert!(out.contains("found 2"), "{out}");
    assert_eq!(home.web.hits("/friend/p1"), 0);
    assert_eq!(home.web.hits("/friend/p3"), 1);
    assert!(
        home.mentions()
            .iter()
            .any(|m| m["source"] == rotated_referer.as_str() && m["status"] == "verified")
    );
}

#[test]
fn reverify_updates_deletes_and_keeps_through_timeouts() {
    let home = Home::new("[fetch]\nallow_private_addresses = true\ntimeout_secs = 1\n");
    home.ok(&["crawl"]);
    let post = home.post_url();
    let urls: Vec<String> = ["edit", "gone", "unlinked", "slow", "notfound", "etag"]
        .iter()
        .map(|name| home.linking_page(&format!("/rv/{name}"), &format!("Original {name}")))
        .collect();
    home.web.set(
        "/rv/etag",
        Fixture::html(&format!("<a href=\"{post}\">x</a>")).etag("\"e1\""),
    );
    for url in &urls {
        home.ok(&["submit", url, &post]);
    }
    home.linking_page("/rv/edit", "Edited text");
    home.web.set("/rv/gone", Fixture::status(410));
    home.source("/rv/unlinked", "<p>no more link</p>");
    let mut slow = Fixture::html("<p>");
    slow.stall = true;
    home.web.set("/rv/slow", slow);
    home.web.set("/rv/notfound", Fixture::status(404));

    let out = home.ok(&["reverify"]);
    assert!(out.starts_with("reverify:"), "{out}");
    let status = |name: &str| {
        let url = home.web.url(&format!("/rv/{name}"));
        home.mentions()
            .into_iter()
            .find(|m| m["source"] == url.as_str())
            .unwrap()
    };
    assert!(
        status("edit")["excerpt"]
            .as_str()
            .unwrap()
            .contains("Edited text"),
        "an edit updates"
    );
    assert_eq!(status("gone")["status"], "deleted", "410 deletes");
    assert_eq!(
        status("unlinked")["status"],
        "deleted",
        "a lost link deletes"
    );
    assert_eq!(
        status("slow")["status"],
        "verified",
        "a timeout never deletes"
    );
    assert_eq!(
        status("notfound")["status"],
        "verified",
        "one 404 is not enough"
    );
    assert_eq!(status("etag")["status"], "verified");

    home.web.clear_seen();
    home.ok(&["reverify"]);
    assert_eq!(
        status("notfound")["status"],
        "deleted",
        "a repeated 404 deletes"
    );
    let etag_requests = home.web.seen("/rv/etag");
    assert_eq!(etag_requests.len(), 1);
    assert_eq!(
        etag_requests[0].status, 304,
        "re-verification is conditional"
    );
    assert_eq!(status("etag")["status"], "verified");
    assert_eq!(status("slow")["status"], "verified");
    assert!(home.log().iter().any(|d| d["outcome"] == "unchanged"));
}

#[test]
fn the_schedule_crawls_inside_serve_and_status_reports_it() {
    let home = Home::new("");
    home.write_config(&format!(
        "[schedule]\ncrawl = \"* * * * * *\"\n\n[[watch]]\nurl = \"{}\"\n\n[[watch]]\nurl = \"{}\"\n",
        home.web.url("/friend/rss.xml"),
        home.web.url("/broken.xml")
    ));
    home.web.set(
        "/friend/rss.xml",
        Fixture::with_type("application/rss+xml", &rss(&home, &[])),
    );
    home.web.set("/broken.xml", Fixture::status(500));
    let daemon = home.serve();
    // The first scheduled crawl learns the posts; then a new item appears in the watched feed.
    assert!(eventually(10, || home
        .ok(&["posts", "--json"])
        .contains("hello")));
    let link = format!("<a href=\"{}\">new</a>", home.post_url());
    home.linking_page("/friend/new", "New item");
    home.web.set(
        "/friend/rss.xml",
        Fixture::with_type(
            "application/rss+xml",
            &rss(&home, &[("/friend/new", &link)]),
        ),
    );
    assert!(
        eventually(15, || home
            .mentions()
            .iter()
            .any(|m| m["status"] == "verified")),
        "the scheduled crawl should find the new item: {}",
        daemon.log_text()
    );
    let status = home.ok(&["status"]);
    assert!(status.contains("crawl      last 20"), "{status}");
    assert!(
        status.contains("FAILING") && status.contains("broken.xml") && status.contains("HTTP 500"),
        "{status}"
    );
    let json: serde_json::Value = serde_json::from_str(&home.ok(&["status", "--json"])).unwrap();
    assert!(json["schedules"][0]["next"].is_string());
    assert_eq!(daemon.terminate(), 0);
}

#[test]
fn summary_only_feed_items_are_read_on_their_page_once() {
    let home = Home::new("");
    home.write_config(&format!(
        "[[watch]]\nurl = \"{}\"\nkind = \"feed\"\n",
        home.web.url("/news/rss.xml")
    ));
    let post = home.post_url();
    let linking = format!("<p>Read <a href=\"{post}\">this</a>.</p>");
    home.web.set(
        "/news/rss.xml",
        Fixture::with_type(
            "application/rss+xml",
            &rss(
                &home,
                &[
                    // A summary without links: the article links to the post.
                    ("/news/summary-only", "<p>A summary of the article.</p>"),
                    // The feed content shows the link: the page is not needed.
                    ("/news/full", &linking),
                    // Neither links.
                    ("/news/unrelated", "<p>Nothing here.</p>"),
                ],
            ),
        ),
    );
    home.linking_page("/news/summary-only", "The whole article");
    home.linking_page("/news/full", "Full item");
    home.source("/news/unrelated", "<p>No links at all.</p>");
    let out = home.ok(&["crawl"]);
    assert!(out.contains("found 2"), "{out}");
    let sources: Vec<String> = home
        .mentions()
        .iter()
        .filter(|m| m["status"] == "verified")
        .map(|m| m["source"].as_str().unwrap().to_string())
        .collect();
    assert!(
        sources.contains(&home.web.url("/news/summary-only")),
        "{sources:?}"
    );
    assert_eq!(
        home.web.hits("/news/summary-only"),
        2,
        "read once by the crawler, once by the verifier"
    );
    assert_eq!(
        home.web.hits("/news/full"),
        1,
        "only the verifier reads an item whose feed content links"
    );
    assert_eq!(home.web.hits("/news/unrelated"), 1);
    home.web.clear_seen();
    let out = home.ok(&["crawl"]);
    assert!(out.contains("found 0"), "{out}");
    for path in ["/news/summary-only", "/news/full", "/news/unrelated"] {
        assert_eq!(
            home.web.hits(path),
            0,
            "{path}: an unchanged item is not read again"
        );
    }
}

#[test]
fn a_crawl_that_finishes_never_frees_a_job_the_daemon_is_working_on() {
    let home = Home::new("[fetch]\nallow_private_addresses = true\ntimeout_secs = 10\n");
    home.ok(&["crawl"]);
    let daemon = home.serve();
    let post = home.post_url();
    home.web.set(
        "/slow/1",
        Fixture::html(&format!("<a href=\"{post}\">slow but fine</a>")).delayed(3_000),
    );
    let source = home.web.url("/slow/1");
    let r = client()
        .post(daemon.url("/webmention"))
        .form(&[("source", source.as_str()), ("target", post.as_str())])
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    assert!(
        eventually(10, || home.web.arrived("/slow/1") == 1),
        "the daemon's fetch is in flight"
    );
    home.ok(&["crawl"]); // its drain ends while the daemon's fetch is in flight
    let decisions = || {
        home.log()
            .iter()
            .filter(|d| d["source"] == source.as_str())
            .count()
    };
    assert!(eventually(10, || decisions() >= 1));
    // The job is done and gone: a second (wrong) run would have had to fetch before that.
    assert!(eventually(10, || home.queue_idle()));
    assert_eq!(decisions(), 1, "{:?}", home.log());
    assert_eq!(
        home.web.arrived("/slow/1"),
        1,
        "the source was fetched once"
    );
}

#[test]
fn rechecking_unchanged_pages_keeps_published_timestamps() {
    let home = Home::new("");
    home.ok(&["crawl"]);
    let a = home.linking_page("/same/a", "Stays the same");
    let b = home.linking_page("/same/b", "Will change");
    home.ok(&["submit", &a, &home.post_url()]);
    home.ok(&["submit", &b, &home.post_url()]);
    let stamps = || -> Vec<(String, String)> {
        let mut list: Vec<(String, String)> = home
            .mentions()
            .iter()
            .map(|m| {
                (
                    m["source"].as_str().unwrap().to_string(),
                    m["verified_at"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        list.sort();
        list
    };
    let before = stamps();
    let out = home.dir.path().join("feeds");
    home.ok(&["export", "--out", out.to_str().unwrap()]);
    let atom_before = read(&out.join("mentions.atom"));
    std::thread::sleep(std::time::Duration::from_millis(1_100)); // stamps have whole seconds
    home.ok(&["reverify"]);
    assert_eq!(stamps(), before, "nothing changed, nothing moved");
    home.ok(&["export", "--out", out.to_str().unwrap()]);
    assert_eq!(read(&out.join("mentions.atom")), atom_before);

    home.linking_page("/same/b", "Has changed now");
    home.ok(&["reverify"]);
    let after = stamps();
    assert_eq!(after[0], before[0], "{a} did not change");
    assert_ne!(after[1].1, before[1].1, "{b} changed, so its stamp moved");
}

#[test]
fn a_spent_host_budget_defers_candidates_without_calling_it_an_error() {
    let home = Home::new("");
    home.write_config(&format!(
        "[fetch]\nallow_private_addresses = true\ntimeout_secs = 2\nper_host_per_minute = 3\n\n[[watch]]\nurl = \"{}\"\nkind = \"feed\"\n",
        home.web.url("/many/rss.xml")
    ));
    let link = format!("<p><a href=\"{}\">this</a></p>", home.post_url());
    let paths: Vec<String> = (0..6).map(|i| format!("/many/{i}")).collect();
    for p in &paths {
        home.linking_page(p, "one of many");
    }
    let items: Vec<(&str, &str)> = paths.iter().map(|p| (p.as_str(), link.as_str())).collect();
    home.web.set(
        "/many/rss.xml",
        Fixture::with_type("application/rss+xml", &rss(&home, &items)),
    );
    // The feed and the site's own feed are configured URLs: only sources count. Three fetches
    // a minute on the fixture host: three verified, three deferred, no errors.
    let (code, out, err) = home.run(&["crawl"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("verified 3") && out.contains("deferred 3"),
        "{out}"
    );
    assert_eq!(
        home.mentions()
            .iter()
            .filter(|m| m["status"] == "pending")
            .count(),
        3
    );
}
