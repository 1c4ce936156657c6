//! One mention from `backfeed submit` to every output format, and every bad input of the
//! spine's list, each through the real binary against a fixture web on 127.0.0.1.

mod support;
use support::*;

fn outcome_for(home: &Home, source: &str) -> (String, String) {
    let log = home.log();
    let d = log
        .iter()
        .rev()
        .find(|d| d["source"] == source)
        .unwrap_or_else(|| panic!("no decision for {source}: {log:?}"));
    (
        d["outcome"].as_str().unwrap().to_string(),
        d["reason"].as_str().unwrap().to_string(),
    )
}

#[test]
fn submit_verifies_and_every_format_publishes_it_with_stable_ids() {
    let home = Home::new("");
    home.ok(&["crawl"]);
    let source = home.linking_page("/alice/post-7", "Alice on <b>things</b>");

    let out = home.ok(&["submit", &source, &home.post_url()]);
    assert!(out.contains("outcome: verified"), "{out}");

    let mentions = home.mentions();
    assert_eq!(mentions.len(), 1);
    let m = &mentions[0];
    for key in [
        "id",
        "source",
        "target",
        "kind",
        "type",
        "status",
        "title",
        "author",
        "published",
        "excerpt",
        "content_html",
        "first_seen",
        "verified_at",
    ] {
        assert!(m.get(key).is_some(), "mentions --json lacks {key}: {m}");
    }
    assert_eq!(m["source"], source.as_str());
    assert_eq!(m["target"], home.post_url().as_str());
    assert_eq!(m["status"], "verified");
    assert_eq!(m["type"], "mention");
    assert_eq!(
        m["kind"], "webmention",
        "a hand submission is a webmention sent by hand: kinds stay within the contract's list"
    );
    assert_eq!(
        m["title"], "Alice on <b>things</b>",
        "a <title> is plain text, shown as written"
    );
    assert!(
        m["published"].is_null(),
        "a page without a date gets none, never now"
    );
    assert_eq!(m["author"]["name"], "127.0.0.1");
    assert!(
        m["excerpt"]
            .as_str()
            .unwrap()
            .contains("read this post today."),
        "{m}"
    );

    let posts: Vec<serde_json::Value> =
        serde_json::from_str(&home.ok(&["posts", "--json"])).unwrap();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0]["mentions"], 1);
    assert_eq!(posts[0]["key"], "hello");
    assert_eq!(posts[0]["title"], "Hello, world");
    assert!(
        posts[0]["published"]
            .as_str()
            .unwrap()
            .starts_with("2024-05-01T08:00:00")
    );

    let out1 = home.dir.path().join("export1");
    let out2 = home.dir.path().join("export2");
    home.ok(&["export", "--out", out1.to_str().unwrap()]);
    home.ok(&["submit", &source, &home.post_url()]); // an update must not change ids
    home.ok(&["export", "--out", out2.to_str().unwrap()]);

    let atom = feed_rs::parser::parse(read(&out1.join("mentions.atom")).as_bytes()).unwrap();
    let rss = feed_rs::parser::parse(read(&out1.join("mentions.rss")).as_bytes()).unwrap();
    let json_feed = feed_rs::parser::parse(read(&out1.join("mentions.json")).as_bytes()).unwrap();
    for feed in [&atom, &rss, &json_feed] {
        assert_eq!(feed.entries.len(), 1);
        assert_eq!(feed.entries[0].links[0].href, source);
    }
    let atom_text = read(&out1.join("mentions.atom"));
    assert!(
        atom_text.contains(&format!(
            "<thr:in-reply-to ref=\"{0}\" href=\"{0}\"",
            home.post_url()
        )),
        "{atom_text}"
    );
    assert!(
        atom.entries[0]
            .title
            .as_ref()
            .unwrap()
            .content
            .contains("Hello, world")
    );
    assert!(
        atom_text.contains("Alice on &lt;b&gt;things&lt;/b&gt;"),
        "titles are escaped text: {atom_text}"
    );
    assert!(
        !atom_text.contains("<b>"),
        "no live markup from a source: {atom_text}"
    );
    let again = feed_rs::parser::parse(read(&out2.join("mentions.atom")).as_bytes()).unwrap();
    assert_eq!(
        atom.entries[0].id, again.entries[0].id,
        "entry id is stable across runs and exports"
    );
    assert!(
        atom.entries[0]
            .id
            .starts_with("tag:127.0.0.1,2026:mention/")
    );
    let rss2 = feed_rs::parser::parse(read(&out2.join("mentions.rss")).as_bytes()).unwrap();
    assert_eq!(rss.entries[0].id, rss2.entries[0].id);

    let jf: serde_json::Value = serde_json::from_str(&read(&out1.join("mentions.json"))).unwrap();
    assert_eq!(jf["version"], "https://jsonfeed.org/version/1.1");
    assert_eq!(
        jf["items"][0]["id"].as_str(),
        Some(atom.entries[0].id.as_str())
    );
    let jf2: serde_json::Value =
        serde_json::from_str(&read(&out1.join("mentions.jf2.json"))).unwrap();
    assert_eq!(jf2["type"], "feed");
    let child = &jf2["children"][0];
    assert_eq!(child["type"], "entry");
    assert_eq!(child["wm-property"], "mention-of");
    assert_eq!(child["mention-of"], home.post_url().as_str());
    assert_eq!(child["wm-source"], source.as_str());
    assert!(child["wm-id"].is_i64());
    assert_eq!(child["author"]["type"], "card");

    let index: serde_json::Value = serde_json::from_str(&read(&out1.join("index.json"))).unwrap();
    let entry = &index[home.post_url()];
    assert_eq!(entry["key"], "hello");
    assert_eq!(entry["count"], 1);
    let per_post: serde_json::Value =
        serde_json::from_str(&read(&out1.join("posts/hello.json"))).unwrap();
    assert_eq!(per_post["children"].as_array().unwrap().len(), 1);
    feed_rs::parser::parse(read(&out1.join("posts/hello.atom")).as_bytes()).unwrap();
}

#[test]
fn every_bad_input_gets_its_outcome_and_reason_in_the_log() {
    let home = Home::new(
        "[fetch]\nallow_private_addresses = true\ntimeout_secs = 1\nmax_bytes = 20000\nmax_redirects = 3\n",
    );
    home.ok(&["crawl"]);
    let post = home.post_url();
    let web = &home.web;

    let cases: Vec<(&str, support::Fixture, &str, &str)> = vec![
        (
            "/no-link",
            Fixture::html("<p>nothing here</p>"),
            "no_link",
            "no link",
        ),
        (
            "/comment-script",
            Fixture::html(&format!(
                "<!-- <a href=\"{post}\">x</a> --><script>var a = '<a href=\"{post}\">'</script><style>a[href=\"{post}\"]{{}}</style>"
            )),
            "no_link",
            "no link",
        ),
        ("/missing", Fixture::status(404), "not_found", "404"),
        ("/gone", Fixture::status(410), "gone", "410"),
        (
            "/loop-a",
            Fixture::redirect("/loop-b"),
            "refused",
            "redirects",
        ),
        (
            "/huge",
            Fixture::html(&format!("<a href=\"{post}\">x</a>{}", "x".repeat(50_000))),
            "refused",
            "larger than 20000",
        ),
        (
            "/image",
            Fixture::with_type("image/png", b"\x89PNG\r\n\x1a\n binary"),
            "no_link",
            "image/png",
        ),
    ];
    web.set("/loop-b", Fixture::redirect("/loop-a"));
    for (path, fixture, want, reason_part) in cases {
        web.set(path, fixture);
        let source = web.url(path);
        let (code, _, _) = home.run(&["submit", &source, &post]);
        assert_eq!(code, 1, "{path} must not verify");
        let (outcome, reason) = outcome_for(&home, &source);
        assert_eq!(outcome, want, "{path}: {reason}");
        assert!(
            reason.contains(reason_part),
            "{path}: reason {reason:?} lacks {reason_part:?}"
        );
    }

    // A gzip bomb: 10 MB of zeros in a few KB; the cap counts decompressed bytes.
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut enc, &vec![b' '; 10_000_000]).unwrap();
    let bomb = enc.finish().unwrap();
    assert!(bomb.len() < 50_000);
    web.set(
        "/bomb",
        Fixture::with_type("text/html", &bomb).header("content-encoding", "gzip"),
    );
    let source = web.url("/bomb");
    assert_eq!(home.run(&["submit", &source, &post]).0, 1);
    let (outcome, reason) = outcome_for(&home, &source);
    assert_eq!(
        (outcome.as_str(), reason.contains("larger than")),
        ("refused", true),
        "{reason}"
    );

    // A source that never finishes sending: the whole-request deadline, a transient error.
    let mut stall = Fixture::html(&format!("<a href=\"{post}\">x</a>"));
    stall.stall = true;
    web.set("/stall", stall);
    let source = web.url("/stall");
    // (The command returns at all only because the deadline cut the stalled body: the reason
    // says so. No wall-clock bound is asserted: tests never assert timings.)
    assert_eq!(home.run(&["submit", &source, &post]).0, 1);
    let (outcome, reason) = outcome_for(&home, &source);
    assert_eq!(outcome, "transient", "{reason}");
    assert!(reason.contains("timed out"), "{reason}");
    let pending = home
        .mentions()
        .into_iter()
        .find(|m| m["source"] == source.as_str())
        .unwrap();
    assert_eq!(
        pending["status"], "pending",
        "a transient error waits for a retry"
    );

    // Invalid UTF-8 is replaced, never a failure.
    let mut bytes = format!("<p>caf\u{e9} <a href=\"{post}\">post</a> ").into_bytes();
    bytes.extend_from_slice(b"\xff\xfe broken");
    web.set(
        "/bad-utf8",
        Fixture::with_type("text/html; charset=utf-8", &bytes),
    );
    let out = home.ok(&["submit", &web.url("/bad-utf8"), &post]);
    assert!(out.contains("verified"), "{out}");

    // A target outside the site is refused before anything is fetched.
    let source = home.linking_page("/fine", "fine");
    let (code, _, err) = home.run(&["submit", &source, "https://elsewhere.example/post"]);
    assert_eq!(code, 1);
    assert!(err.contains("not under this site"), "{err}");
    assert_eq!(web.hits("/fine"), 0);
}

#[test]
fn loopback_sources_are_refused_without_a_fetch_unless_allowed() {
    let home = Home::new("[fetch]\nallow_private_addresses = false\ntimeout_secs = 2\n");
    home.ok(&["crawl"]); // the site feed is configured, so it is fetched from loopback as is
    let source = home.linking_page("/private", "private");
    let (code, _, _) = home.run(&["submit", &source, &home.post_url()]);
    assert_eq!(code, 1);
    let (outcome, reason) = outcome_for(&home, &source);
    assert_eq!(outcome, "refused");
    assert!(reason.contains("not a public address"), "{reason}");
    assert_eq!(
        home.web.hits("/private"),
        0,
        "refused without being fetched"
    );

    // A name that resolves to 127.0.0.1: refused by the resolver, at connect time.
    let by_name = source.replace("127.0.0.1", "localhost");
    assert_eq!(home.run(&["submit", &by_name, &home.post_url()]).0, 1);
    let (outcome, reason) = outcome_for(&home, &by_name);
    assert_eq!(outcome, "refused");
    assert!(reason.contains("not a public address"), "{reason}");
    assert!(
        !reason.contains("127.0.0.1"),
        "internal DNS answers are not shown: {reason}"
    );
    assert_eq!(home.web.hits("/private"), 0);

    // A public-looking redirect hop to loopback would be refused the same way; a redirect from
    // a loopback page cannot be tested without a public address, so the hop check is covered
    // by the same precheck, which runs on every hop.
}

#[test]
fn a_redirected_source_keeps_its_url_and_shows_where_it_went() {
    let home = Home::new("");
    home.ok(&["crawl"]);
    home.linking_page("/moved/here", "Moved");
    home.web.set("/old/path", Fixture::redirect("/moved/here"));
    let source = home.web.url("/old/path");
    home.ok(&["submit", &source, &home.post_url()]);
    let m = &home.mentions()[0];
    assert_eq!(
        m["source"],
        source.as_str(),
        "the source is stored as given: it is the key"
    );
    let out = home.dir.path().join("out");
    home.ok(&["export", "--out", out.to_str().unwrap()]);
    let jf2: serde_json::Value =
        serde_json::from_str(&read(&out.join("mentions.jf2.json"))).unwrap();
    assert_eq!(jf2["children"][0]["wm-source"], source.as_str());
    assert_eq!(
        jf2["children"][0]["url"],
        home.web.url("/moved/here").as_str(),
        "the final URL, for display"
    );
}

#[test]
fn bad_config_exits_2_naming_the_key() {
    let home = Home::new("");
    std::fs::write(
        home.config_path(),
        "[site]\nbase_url = \"https://b.example/\"\n[fetch]\nmax_bytes = \"lots\"\n",
    )
    .unwrap();
    let (code, _, err) = home.run(&["status"]);
    assert_eq!(code, 2);
    assert!(err.contains("max_bytes"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one clear line: {err}");
    std::fs::write(home.config_path(), "[store]\npath = \"x.db\"\n").unwrap();
    let (code, _, err) = home.run(&["status"]);
    assert_eq!(code, 2);
    assert!(err.contains("site.base_url"), "{err}");
    let (code, _, _) = home.run(&["mentions", "--bogus"]);
    assert_eq!(code, 2, "bad usage exits 2");
}

#[test]
fn help_teaches() {
    let home = Home::new("");
    let out = home.ok(&["--help"]);
    for word in [
        "serve",
        "crawl",
        "submit",
        "mentions",
        "export",
        "Getting started",
    ] {
        assert!(out.contains(word), "--help lacks {word}");
    }
}

#[test]
fn blocks_fail_closed_when_the_store_cannot_say() {
    let home = Home::new("");
    home.ok(&["crawl"]);
    let source = home.linking_page("/maybe-blocked", "maybe");
    // The block list cannot be read (a damaged store): nothing may pass as "not blocked".
    home.sql().execute_batch("DROP TABLE blocks;");
    let (code, _, err) = home.run(&["submit", &source, &home.post_url()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("internal error"), "{err}");
    assert_eq!(home.web.hits("/maybe-blocked"), 0, "not fetched");
    assert!(
        home.mentions().iter().all(|m| m["status"] != "verified"),
        "nothing published"
    );
}

#[test]
fn a_closed_pipe_ends_a_listing_quietly() {
    use std::process::{Command, Stdio};
    let home = Home::new("");
    home.ok(&["crawl"]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_backfeed"))
        .args([
            "--config",
            home.config_path().to_str().unwrap(),
            "posts",
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader is gone before anything is written
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_ne!(out.status.code(), Some(101), "{stderr}");
}
