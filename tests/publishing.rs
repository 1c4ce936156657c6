//! The published feeds and the webmention.io-compatible API over real HTTP: conditional GET,
//! filters, paging, counts, metrics; and the crash test: what was acknowledged survives SIGKILL.

mod support;
use support::*;

#[test]
fn feeds_support_conditional_get_and_filters() {
    let home = Home::new("");
    home.set_site_feed(&[
        (POST_PATH, "Hello, world"),
        ("/blog/2024/second/", "Second"),
    ]);
    home.web
        .set("/blog/2024/second/", Fixture::html("<title>Second</title>"));
    home.ok(&["crawl"]);
    let second = home.web.url("/blog/2024/second/");
    for i in 0..3 {
        let s = home.linking_page(&format!("/f/{i}"), &format!("Linker {i}"));
        home.ok(&["submit", &s, &home.post_url()]);
    }
    let reply = home.source(
        "/f/reply",
        &format!(r#"<div class="h-entry"><a class="u-in-reply-to" href="{second}">re</a><p class="e-content">Great <em>post</em></p></div>"#),
    );
    home.ok(&["submit", &reply, &second]);
    let daemon = home.serve();
    let c = client();

    for (path, ct) in [
        ("/mentions.atom", "application/atom+xml"),
        ("/mentions.rss", "application/rss+xml"),
        ("/mentions.json", "application/feed+json"),
        ("/mentions.jf2", "application/jf2feed+json"),
    ] {
        let r = c.get(daemon.url(path)).send().unwrap();
        assert_eq!(r.status(), 200);
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(ct)
        );
        let etag = r.headers()["etag"].to_str().unwrap().to_string();
        let last_modified = r.headers()["last-modified"].to_str().unwrap().to_string();
        let body = r.bytes().unwrap();
        if path != "/mentions.jf2" {
            let feed =
                feed_rs::parser::parse(body.as_ref()).unwrap_or_else(|e| panic!("{path}: {e}"));
            assert_eq!(feed.entries.len(), 4, "{path}");
        }
        let r = c
            .get(daemon.url(path))
            .header("if-none-match", &etag)
            .send()
            .unwrap();
        assert_eq!(r.status(), 304, "{path} If-None-Match");
        let r = c
            .get(daemon.url(path))
            .header("if-modified-since", &last_modified)
            .send()
            .unwrap();
        assert_eq!(r.status(), 304, "{path} If-Modified-Since");
    }

    let one: serde_json::Value = c
        .get(daemon.url("/mentions.json"))
        .query(&[("target", second.as_str())])
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(one["items"].as_array().unwrap().len(), 1);
    assert_eq!(one["items"][0]["url"], reply.as_str());
    assert!(
        one["items"][0]["content_html"]
            .as_str()
            .unwrap()
            .contains("<em>post</em>")
    );
    let limited = feed_rs::parser::parse(
        c.get(daemon.url("/mentions.atom?limit=2"))
            .send()
            .unwrap()
            .bytes()
            .unwrap()
            .as_ref(),
    )
    .unwrap();
    assert_eq!(limited.entries.len(), 2);

    // webmention.io's API.
    let api = |q: &[(&str, &str)]| -> serde_json::Value {
        c.get(daemon.url("/api/mentions.jf2"))
            .query(q)
            .send()
            .unwrap()
            .json()
            .unwrap()
    };
    let all = api(&[("token", "ignored")]);
    assert_eq!(all["children"].as_array().unwrap().len(), 4);
    let replies = api(&[("wm-property", "in-reply-to")]);
    assert_eq!(replies["children"].as_array().unwrap().len(), 1);
    assert_eq!(replies["children"][0]["in-reply-to"], second.as_str());
    let html = replies["children"][0]["content"]["html"].as_str().unwrap();
    assert!(html.contains("<em>post</em>"), "{html}");
    let by_target = api(&[
        ("target[]", second.as_str()),
        ("target[]", home.post_url().as_str()),
    ]);
    assert_eq!(by_target["children"].as_array().unwrap().len(), 4);
    let page0 = api(&[("per-page", "3"), ("page", "0"), ("sort-dir", "up")]);
    let page1 = api(&[("per-page", "3"), ("page", "1"), ("sort-dir", "up")]);
    assert_eq!(page0["children"].as_array().unwrap().len(), 3);
    assert_eq!(page1["children"].as_array().unwrap().len(), 1);
    let first_id = page0["children"][0]["wm-id"].as_i64().unwrap();
    let since = api(&[("since_id", &first_id.to_string())]);
    assert_eq!(since["children"].as_array().unwrap().len(), 3);
    let domain = api(&[("domain", "127.0.0.1")]);
    assert_eq!(domain["children"].as_array().unwrap().len(), 4);
    let future = api(&[("since", "2999-01-01T00:00:00Z")]);
    assert_eq!(future["children"].as_array().unwrap().len(), 0);
    let bad = c
        .get(daemon.url("/api/mentions.jf2?since=yesterday"))
        .send()
        .unwrap();
    assert_eq!(bad.status(), 400);

    let count_of_post = || -> serde_json::Value {
        c.get(daemon.url("/api/count.json"))
            .query(&[("target", home.post_url().as_str())])
            .send()
            .unwrap()
            .json()
            .unwrap()
    };
    let count = count_of_post();
    assert_eq!(count["count"], 3);
    assert_eq!(count["type"]["mention"], 3);
    // Counts are kept per published version: a new mention is counted at once.
    let fourth = home.linking_page("/count/4", "Counted too");
    home.ok(&["submit", &fourth, &home.post_url()]);
    let count = count_of_post();
    assert_eq!(count["count"], 4, "{count}");
    assert_eq!(c.get(daemon.url("/healthz")).send().unwrap().status(), 200);
    let metrics = c
        .get(daemon.url("/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metrics.contains("backfeed_http_requests_total{route=\"/mentions.atom\",status=\"200\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("backfeed_queue_depth 0"), "{metrics}");
    assert!(
        metrics.contains("backfeed_mentions{status=\"verified\"} 5"),
        "{metrics}"
    );
}

#[test]
fn hostile_markup_never_reaches_a_feed_alive() {
    let home = Home::new("");
    home.ok(&["crawl"]);
    let evil = home.source(
        "/evil",
        &format!(
            r#"<title>Evil &lt;script&gt;alert(1)&lt;/script&gt; &#1;</title><div class="h-entry"><p class="p-author h-card"><span class="p-name">Eve<img src=x onerror=alert(2)></span></p>
            <div class="e-content"><a href="{}" onclick="steal()">post</a><script>alert(3)</script><a href="javascript:alert(4)">js</a><img src="data:text/html,x"><iframe src="https://x.example/"></iframe><p style="position:fixed">styled</p></div></div>"#,
            home.post_url()
        ),
    );
    home.ok(&["submit", &evil, &home.post_url()]);
    let daemon = home.serve();
    for path in [
        "/mentions.atom",
        "/mentions.rss",
        "/mentions.json",
        "/mentions.jf2",
        "/api/mentions.jf2",
    ] {
        let body = daemon.text(path);
        for live in [
            "<script",
            "onclick",
            "onerror",
            "javascript:",
            "data:text",
            "<iframe",
            "style=",
        ] {
            assert!(!body.contains(live), "{path} carries {live}: {body}");
        }
    }
    let atom = client()
        .get(daemon.url("/mentions.atom"))
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    let feed = feed_rs::parser::parse(atom.as_ref()).unwrap();
    assert!(
        feed.entries[0]
            .title
            .as_ref()
            .unwrap()
            .content
            .contains("Eve")
    );
    let jf2: serde_json::Value = client()
        .get(daemon.url("/mentions.jf2"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        jf2["children"][0]["name"], "Evil <script>alert(1)</script>",
        "titles are plain text, shown as written"
    );
}

#[test]
fn two_hundred_acknowledged_webmentions_survive_sigkill() {
    let home = Home::new(
        "[fetch]\nallow_private_addresses = true\ntimeout_secs = 5\nper_host = 2\nper_host_per_minute = 0\n",
    );
    home.without_rate_limits();
    home.leases_for_restarts();
    home.ok(&["crawl"]);
    let sources: Vec<String> = (0..200)
        .map(|i| home.linking_page(&format!("/burst/{i}"), &format!("Burst {i}")))
        .collect();
    let daemon = home.serve();
    let post = home.post_url();
    home.web.set_delay(100); // slow sources: the kill lands with work queued and in flight
    let accepted = std::sync::atomic::AtomicUsize::new(0);
    // 200 clients at once, each with its own connection, released together.
    let start = std::sync::Barrier::new(sources.len());
    std::thread::scope(|scope| {
        for source in &sources {
            let (daemon, post, accepted, start) = (&daemon, &post, &accepted, &start);
            scope.spawn(move || {
                let c = client();
                start.wait();
                let r = c
                    .post(daemon.url("/webmention"))
                    .form(&[("source", source.as_str()), ("target", post.as_str())])
                    .send()
                    .unwrap();
                assert_eq!(r.status(), 201);
                accepted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            });
        }
    });
    assert_eq!(accepted.into_inner(), 200);
    daemon.kill(); // right after the last 201: no chance to finish or clean up
    let before = home
        .mentions()
        .iter()
        .filter(|m| m["status"] == "verified")
        .count();
    assert!(
        before < 200,
        "the kill should land before the work is done ({before} verified)"
    );
    home.web.set_delay(0);

    let daemon = home.serve();
    assert!(
        eventually(60, || home
            .mentions()
            .iter()
            .filter(|m| m["status"] == "verified")
            .count()
            == 200),
        "not all verified: {}\n{}",
        home.ok(&["status"]),
        daemon.log_text()
    );
    drop(daemon);
    let mentions = home.mentions();
    assert_eq!(mentions.len(), 200, "exactly one mention per pair");
    let mut seen: Vec<&str> = mentions
        .iter()
        .map(|m| m["source"].as_str().unwrap())
        .collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 200);
    let verified_decisions = home
        .log()
        .iter()
        .filter(|d| d["outcome"] == "verified")
        .count();
    assert_eq!(verified_decisions, 200, "each pair verified exactly once");
}

#[test]
fn per_host_limits_hold_under_a_burst() {
    // 30 webmentions whose sources all live on one host: however many are queued, at most
    // `per_host` requests reach that host at once.
    let home = Home::new(
        "[fetch]\nallow_private_addresses = true\nper_host = 2\nconcurrency = 32\nper_host_per_minute = 0\n",
    );
    home.without_rate_limits();
    home.ok(&["crawl"]);
    let sources: Vec<String> = (0..30)
        .map(|i| home.linking_page(&format!("/host/{i}"), "x"))
        .collect();
    let daemon = home.serve();
    home.web.set_delay(150);
    let c = client();
    for source in &sources {
        let r = c
            .post(daemon.url("/webmention"))
            .form(&[
                ("source", source.as_str()),
                ("target", home.post_url().as_str()),
            ])
            .send()
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    assert!(eventually(60, || home
        .mentions()
        .iter()
        .filter(|m| m["status"] == "verified")
        .count()
        == 30));
    assert_eq!(
        home.web.max_in_flight(),
        2,
        "per_host = 2 must cap concurrent requests to one host, and use them"
    );
}

/// A home with one verified mention of its post.
fn home_with_one_mention() -> Home {
    let home = Home::new("");
    home.ok(&["crawl"]);
    let source = home.linking_page("/one/1", "One");
    home.ok(&["submit", &source, &home.post_url()]);
    home
}

#[test]
fn a_post_feed_has_one_id_and_title_served_or_exported() {
    let home = home_with_one_mention();
    let out = home.dir.path().join("site");
    home.ok(&["export", "--out", out.to_str().unwrap()]);
    let exported = feed_rs::parser::parse(read(&out.join("posts/hello.atom")).as_bytes()).unwrap();
    let daemon = home.serve();
    // The target as a reader might spell it: another scheme-case and no trailing slash.
    let spelled = home
        .post_url()
        .trim_end_matches('/')
        .replace("http://", "HTTP://");
    let served_body = client()
        .get(daemon.url("/mentions.atom"))
        .query(&[("target", spelled.as_str())])
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    let served = feed_rs::parser::parse(served_body.as_ref()).unwrap();
    assert_eq!(served.id, exported.id, "one feed, one id");
    assert_eq!(
        served.title.map(|t| t.content),
        exported.title.map(|t| t.content)
    );
    assert_eq!(served.entries.len(), 1);
    assert_eq!(served.entries[0].id, exported.entries[0].id);
}

#[test]
fn stored_text_is_capped_whatever_the_source_sends() {
    let home = Home::new("");
    home.ok(&["crawl"]);
    // 1.8 MB of content in few elements, and a title of 20,000 characters.
    let words = "many words of a very long article ".repeat(2_000);
    let body = format!(
        "<title>{}</title><div class=\"h-entry\"><a class=\"u-in-reply-to\" href=\"{}\">re</a>\
         <div class=\"e-content\">{}</div></div>",
        "T".repeat(20_000),
        home.post_url(),
        format!("<p>{words}</p>").repeat(26)
    );
    assert!(body.len() > 1_700_000);
    let source = home.source("/huge", &body);
    home.ok(&["submit", &source, &home.post_url()]);
    let m = &home.mentions()[0];
    assert_eq!(m["status"], "verified");
    let content = m["content_html"].as_str().unwrap();
    assert!(content.len() <= 8 * 1024, "{}", content.len());
    assert!(content.ends_with("</p>"), "cut at an element boundary");
    assert!(m["excerpt"].as_str().unwrap().chars().count() <= 400);
    assert!(m["title"].as_str().unwrap().chars().count() <= 201);
    let daemon = home.serve();
    let atom = daemon.text("/mentions.atom");
    assert!(atom.len() < 64 * 1024, "{}", atom.len());
    let api = daemon.text("/api/mentions.jf2?per-page=1000");
    assert!(api.len() < 64 * 1024, "{}", api.len());
}

#[test]
fn hostile_parameters_get_clear_answers() {
    let home = home_with_one_mention();
    let daemon = home.serve();
    let get = |path: &str| {
        let r = client().get(daemon.url(path)).send().unwrap();
        (r.status().as_u16(), r.text().unwrap())
    };
    // Control characters in a parameter: 400, never an unparsable feed.
    for path in [
        "/mentions.atom?target=%01%02http://x",
        "/api/mentions.jf2?target=%00",
        "/api/count.json?target=http://a%0d%0a.example/",
    ] {
        let (status, body) = get(path);
        assert_eq!(status, 400, "{path}");
        assert!(body.contains("control characters"), "{path}: {body}");
    }
    // A page number that would overflow is simply past the end.
    let (status, body) = get("/api/mentions.jf2?page=9223372036854775807&per-page=20");
    assert_eq!(status, 200);
    let page: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(page["children"].as_array().unwrap().len(), 0, "{body}");
    // LIKE wildcards are characters: `%` and `_` match no domain.
    for domain in ["%", "_", "%25"] {
        let (_, body) = get(&format!("/api/mentions.jf2?domain={domain}"));
        let page: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(page["children"].as_array().unwrap().len(), 0, "{domain}");
    }
    let (_, body) = get("/api/mentions.jf2?domain=127.0.0.1");
    let page: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(page["children"].as_array().unwrap().len(), 1);
}

#[test]
fn status_pages_have_unguessable_names_and_health_checks_writes() {
    let home = Home::new("");
    home.ok(&["crawl"]);
    let daemon = home.serve();
    let source = home.linking_page("/s/1", "one");
    let r = client()
        .post(daemon.url("/webmention"))
        .form(&[("source", source.as_str()), ("target", &home.post_url())])
        .send()
        .unwrap();
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let name = location.rsplit('/').next().unwrap();
    assert!(name.len() >= 32, "{location}");
    assert_eq!(client().get(&location).send().unwrap().status(), 200);
    assert_eq!(
        client()
            .get(daemon.url("/webmention/1"))
            .send()
            .unwrap()
            .status(),
        404,
        "sequential ids name nothing"
    );
    assert_eq!(
        client()
            .get(daemon.url("/healthz"))
            .send()
            .unwrap()
            .status(),
        200
    );
    // A store that can no longer write is not healthy.
    home.sql().execute_batch("DROP TABLE health;");
    assert_eq!(
        client()
            .get(daemon.url("/healthz"))
            .send()
            .unwrap()
            .status(),
        503
    );
}

#[test]
fn etags_follow_what_is_published_not_when_it_was_checked() {
    let home = home_with_one_mention();
    let daemon = home.serve();
    let etag = |path: &str| -> String {
        client().get(daemon.url(path)).send().unwrap().headers()["etag"]
            .to_str()
            .unwrap()
            .to_string()
    };
    let (atom, count) = (
        etag("/mentions.atom"),
        etag(&format!("/api/count.json?target={}", home.post_url())),
    );
    assert_ne!(atom, count, "one validator per request");
    std::thread::sleep(std::time::Duration::from_millis(1_100));
    home.ok(&["reverify"]);
    assert_eq!(
        etag("/mentions.atom"),
        atom,
        "re-checked, unchanged: same ETag"
    );
    let r = client()
        .get(daemon.url("/mentions.atom"))
        .header("if-none-match", &atom)
        .send()
        .unwrap();
    assert_eq!(r.status(), 304);
    let second = home.linking_page("/one/2", "Two");
    home.ok(&["submit", &second, &home.post_url()]);
    assert_ne!(etag("/mentions.atom"), atom, "a new mention: a new ETag");
}

#[test]
fn mentions_render_as_an_html_fragment_served_exported_and_embeddable() {
    let home = Home::new("");
    home.ok(&["crawl"]);
    let post = home.post_url();
    let like = home.source(
        "/frag/like",
        &format!(
            "<div class=\"h-entry\"><a class=\"u-like-of\" href=\"{post}\">♥</a>\
             <a class=\"p-author h-card\" href=\"https://lena.example/\"><img class=\"u-photo\" src=\"https://lena.example/me.jpg\" alt=\"\">Lena</a></div>"
        ),
    );
    let reply = home.source(
        "/frag/reply",
        &format!(
            "<div class=\"h-entry\"><a class=\"u-in-reply-to\" href=\"{post}\">re</a>\
             <a class=\"p-author h-card\" href=\"/\">Mal &lt;script&gt;alert(1)&lt;/script&gt;</a>\
             <div class=\"e-content\">Nice <b>post</b><script>evil()</script></div></div>"
        ),
    );
    home.ok(&["submit", &like, &post]);
    home.ok(&["submit", &reply, &post]);
    let ping = home.linking_page("/frag/ping", "An old blog's post");
    let daemon = home.serve();
    let xml = client()
        .post(daemon.url("/xmlrpc"))
        .body(format!(
            "<?xml version=\"1.0\"?><methodCall><methodName>pingback.ping</methodName><params>\
             <param><value><string>{ping}</string></value></param>\
             <param><value><string>{post}</string></value></param></params></methodCall>"
        ))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(!xml.contains("fault"), "{xml}");
    let r = client()
        .get(daemon.url("/mentions.html"))
        .query(&[("target", post.as_str())])
        .header("origin", "https://other.example")
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    assert!(r.headers().contains_key("etag"));
    let html = r.text().unwrap();
    assert!(
        html.contains("class=\"backfeed-facepile\"")
            && html.contains("https://lena.example/me.jpg"),
        "{html}"
    );
    assert!(
        html.contains("class=\"backfeed-list\"") && html.contains("<b>post</b>"),
        "{html}"
    );
    assert!(
        html.contains("class=\"backfeed-ping\">Pingback: <a href=\"")
            && html.contains("An old blog's post"),
        "{html}"
    );
    assert!(
        !html.contains("<script") && !html.contains("evil()"),
        "no script: {html}"
    );
    assert!(
        html.contains("Mal &lt;script&gt;"),
        "names are text: {html}"
    );
    // The same fragment is exported for a site build, and the script is served.
    let out = home.dir.path().join("site");
    home.ok(&["export", "--out", out.to_str().unwrap()]);
    assert_eq!(read(&out.join("posts/hello.html")), html);
    let js = client().get(daemon.url("/embed.js")).send().unwrap();
    assert_eq!(js.headers()["access-control-allow-origin"], "*");
    assert!(
        js.text()
            .unwrap()
            .contains("customElements.define(\"backfeed-mentions\"")
    );
    assert_eq!(
        client()
            .get(daemon.url("/mentions.html"))
            .send()
            .unwrap()
            .status(),
        400,
        "a target is required"
    );
}

#[test]
fn deletions_a_static_site_can_follow() {
    let home = Home::new("");
    home.ok(&["crawl"]);
    let gone = home.linking_page("/going/1", "Soon gone");
    let stays = home.linking_page("/staying/1", "Here to stay");
    home.ok(&["submit", &gone, &home.post_url()]);
    home.ok(&["submit", &stays, &home.post_url()]);
    let before = chrono::Utc::now() - chrono::Duration::seconds(2);
    home.web.set("/going/1", Fixture::status(410));
    home.ok(&["reverify"]);
    let daemon = home.serve();
    let deleted: serde_json::Value = client()
        .get(daemon.url("/api/deleted.json"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let list = deleted.as_array().unwrap();
    assert_eq!(list.len(), 1, "{deleted}");
    assert_eq!(list[0]["source"], gone.as_str());
    assert_eq!(list[0]["target"], home.post_url().as_str());
    let at = chrono::DateTime::parse_from_rfc3339(list[0]["deleted_at"].as_str().unwrap()).unwrap();
    assert!(at >= before, "{at}");
    // since= filters; a later time has nothing; a bad one is a 400 that says why.
    let later = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let none: serde_json::Value = client()
        .get(daemon.url("/api/deleted.json"))
        .query(&[("since", later.as_str())])
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(none, serde_json::json!([]));
    let bad = client()
        .get(daemon.url("/api/deleted.json?since=yesterday"))
        .send()
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert!(bad.text().unwrap().contains("RFC 3339"));
    // The webmention.io-compatible API includes them when asked, since a time.
    let api: serde_json::Value = client()
        .get(daemon.url("/api/mentions.jf2"))
        .query(&[("since", before.to_rfc3339().as_str()), ("deleted", "true")])
        .send()
        .unwrap()
        .json()
        .unwrap();
    let gone_entry = api["children"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["wm-source"] == gone.as_str())
        .unwrap_or_else(|| panic!("{api}"));
    assert_eq!(gone_entry["deleted"], true);
    // A `domain` that is not the post's keeps its deletions out, as it keeps its mentions.
    let elsewhere: serde_json::Value = client()
        .get(daemon.url("/api/mentions.jf2"))
        .query(&[
            ("since", before.to_rfc3339().as_str()),
            ("deleted", "true"),
            ("domain", "elsewhere.example"),
        ])
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(elsewhere["children"], serde_json::json!([]), "{elsewhere}");
    let plain: serde_json::Value = client()
        .get(daemon.url("/api/mentions.jf2"))
        .query(&[("since", before.to_rfc3339().as_str())])
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(
        !plain.to_string().contains("\"deleted\""),
        "only when asked: {plain}"
    );
    // The export writes the same list.
    let out = home.dir.path().join("site");
    home.ok(&["export", "--out", out.to_str().unwrap()]);
    let exported: serde_json::Value =
        serde_json::from_str(&read(&out.join("deleted.json"))).unwrap();
    assert_eq!(exported, deleted);
}

#[test]
fn an_export_walks_every_mention_once_across_pages_of_the_store() {
    // More mentions than one page the export reads at a time, most of them on one post, all
    // received at the same second: the walk must neither skip nor repeat a tied mention.
    let home = Home::new("");
    let post = home.post_url();
    let other = format!("{post}other/");
    let children: Vec<serde_json::Value> = (0..1_203)
        .map(|i| {
            serde_json::json!({"type": "entry", "wm-received": "2024-05-01T10:00:00Z",
                "wm-source": format!("https://fan{}.example/{i}", i % 7),
                "wm-target": if i % 10 == 0 { &other } else { &post },
                "wm-property": if i % 2 == 0 { "like-of" } else { "in-reply-to" },
                "author": {"type": "card", "name": format!("Fan {i}")}})
        })
        .collect();
    import_webmention_io(&home, children);
    let out = home.dir.path().join("site");
    home.ok(&["export", "--out", out.to_str().unwrap()]);

    let sources = |file: &str| -> Vec<String> {
        let feed: serde_json::Value = serde_json::from_str(&read(&out.join(file))).unwrap();
        feed["children"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["wm-source"].as_str().unwrap().to_string())
            .collect()
    };
    let all = sources("mentions.jf2.json");
    assert_eq!(all.len(), 1_203);
    let distinct: std::collections::HashSet<&String> = all.iter().collect();
    assert_eq!(distinct.len(), 1_203, "no mention twice");
    let index: serde_json::Value = serde_json::from_str(&read(&out.join("index.json"))).unwrap();
    let mine = &index[post.as_str()];
    let on_post = sources(&format!("posts/{}.json", mine["key"].as_str().unwrap()));
    assert_eq!(on_post.len(), 1_082);
    assert_eq!(mine["count"], 1_082);
    assert_eq!(
        mine["type"]["like"].as_i64().unwrap() + mine["type"]["reply"].as_i64().unwrap(),
        1_082
    );
    let html = read(&out.join(format!("posts/{}.html", mine["key"].as_str().unwrap())));
    assert!(html.contains("data-count=\"1082\""), "{}", &html[..200]);
    assert_eq!(html.matches("<li").count(), 1_082);
    let atom = feed_rs::parser::parse(
        read(&out.join(format!("posts/{}.atom", mine["key"].as_str().unwrap()))).as_bytes(),
    )
    .unwrap();
    assert_eq!(atom.entries.len(), 1_082);
}

#[test]
fn a_kept_body_is_never_served_after_what_is_published_changes() {
    let home = home_with_one_mention();
    let daemon = home.serve();
    let post = home.post_url();
    let get = |path: &str| -> String {
        client()
            .get(daemon.url(path))
            .query(&[("target", post.as_str())])
            .send()
            .unwrap()
            .text()
            .unwrap()
    };
    let entries = |atom: &str| {
        feed_rs::parser::parse(atom.as_bytes())
            .unwrap()
            .entries
            .len()
    };
    // Asked twice: the second answer (the body kept from the first) is the same.
    assert_eq!(entries(&get("/mentions.atom")), 1);
    assert_eq!(get("/mentions.atom"), get("/mentions.atom"));
    assert!(get("/api/count.json").contains("\"count\": 1"));
    // A new mention moves the published version: no body made before it is served again.
    let second = home.linking_page("/two/2", "Two");
    home.ok(&["submit", &second, &post]);
    assert_eq!(entries(&get("/mentions.atom")), 2);
    assert!(
        get("/api/count.json").contains("\"count\": 2"),
        "{}",
        get("/api/count.json")
    );
}

#[test]
fn the_apis_pages_walk_every_mention_once_in_order_however_deep() {
    // Mentions of two posts, many received at the same second and some with a date of their
    // own: page after page, in either order and either sort, each comes once, in order.
    let home = Home::new("");
    let post = home.post_url();
    let other = format!("{post}other/");
    let children: Vec<serde_json::Value> = (0..260)
        .map(|i| {
            let mut entry = serde_json::json!({"type": "entry",
                "wm-received": format!("2024-05-0{}T10:00:00Z", 1 + i % 3),
                "wm-source": format!("https://fan{}.example/{i}", i % 7),
                "wm-target": if i % 4 == 0 { &other } else { &post },
                "wm-property": "like-of"});
            if i % 5 == 0 {
                entry["published"] = format!("2023-0{}-01T00:00:00Z", 1 + i % 9).into();
            }
            entry
        })
        .collect();
    import_webmention_io(&home, children);
    let daemon = home.serve();
    let target = serde_urlencoded::to_string([("target", &post)]).unwrap();
    for (query, expected) in [(String::new(), 260), (format!("&{target}"), 195)] {
        for order in [
            "",
            "&sort-dir=up",
            "&sort-by=published",
            "&sort-by=published&sort-dir=up",
        ] {
            let one_page = daemon.text(&format!("/api/mentions.jf2?per-page=1000{query}{order}"));
            let one_page: serde_json::Value = serde_json::from_str(&one_page).unwrap();
            let entries = one_page["children"].as_array().unwrap();
            assert_eq!(entries.len(), expected, "{query}{order}");
            // The list itself is in the order asked for: by when each came (or its own date,
            // sorted by published), then by id.
            let keys: Vec<(String, i64)> = entries
                .iter()
                .map(|c| {
                    let received = c["wm-received"].as_str().unwrap();
                    let own = c["published"]
                        .as_str()
                        .filter(|_| order.contains("published"));
                    (
                        own.unwrap_or(received).to_string(),
                        c["wm-id"].as_i64().unwrap(),
                    )
                })
                .collect();
            let mut in_order = keys.clone();
            in_order.sort();
            if !order.contains("sort-dir=up") {
                in_order.reverse();
            }
            assert_eq!(keys, in_order, "{query}{order}: the list is in order");
            let whole: Vec<i64> = keys.iter().map(|(_, id)| *id).collect();
            let mut walked = Vec::new();
            for page in 0.. {
                let body = daemon.text(&format!(
                    "/api/mentions.jf2?per-page=7&page={page}{query}{order}"
                ));
                let body: serde_json::Value = serde_json::from_str(&body).unwrap();
                let ids = body["children"].as_array().unwrap();
                if ids.is_empty() {
                    break;
                }
                walked.extend(ids.iter().map(|c| c["wm-id"].as_i64().unwrap()));
            }
            assert_eq!(
                walked, whole,
                "{query}{order}: pages of 7 are the list in order"
            );
        }
    }
}

/// Imports `children` as a webmention.io JF2 file, through the binary.
fn import_webmention_io(home: &Home, children: Vec<serde_json::Value>) {
    let history = home.dir.path().join("history.json");
    let feed = serde_json::json!({"type": "feed", "children": children});
    std::fs::write(&history, feed.to_string()).unwrap();
    home.ok(&[
        "import",
        history.to_str().unwrap(),
        "--format",
        "webmention.io",
    ]);
}
