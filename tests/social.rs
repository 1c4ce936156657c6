//! Each social adapter against a fake API served on 127.0.0.1 in the documented shapes (the
//! answers live in fixtures/social/): hits for other sites ignored, URL variants, rate limits
//! honoured and retried later, an expired Bluesky session refreshed, a bad token reported, and a
//! second crawl that adds no duplicates.

mod support;
use support::*;

/// A fixture answer from fixtures/social/, with the post's URL filled in.
fn api(home: &Home, name: &str) -> Fixture {
    let text = std::fs::read_to_string(format!(
        "{}/fixtures/social/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let post = home.post_url();
    let text = text
        .replace("{POST_HTTP}", post.trim_end_matches('/'))
        .replace("{POST_HOSTPATH}", post.trim_start_matches("http://"))
        .replace("{POST}", &post);
    Fixture::with_type("application/json", text.as_bytes())
}

/// A fresh home with Bluesky enabled against the fake API at `/bsky`.
fn bluesky_home() -> Home {
    let home = fresh_home();
    home.write_config(&format!(
        "[sources.bluesky]\nenabled = true\napi_base = \"{}\"\nidentifier = \"you.bsky.social\"\npassword_env = \"TEST_BSKY_PASSWORD\"\n",
        home.web.url("/bsky")
    ));
    home
}

/// A home whose post was published just now: new posts are asked about on every crawl.
fn fresh_home() -> Home {
    let home = Home::new("");
    let now = chrono::Utc::now().to_rfc2822();
    home.set_site_feed_dated(&[(POST_PATH, "Hello, world")], &now);
    home
}

fn by_kind(home: &Home, kind: &str) -> Vec<serde_json::Value> {
    home.mentions()
        .into_iter()
        .filter(|m| m["kind"] == kind)
        .collect()
}

#[test]
fn hacker_news_finds_stories_for_the_post_only() {
    let home = fresh_home();
    home.write_config(&format!(
        "[sources.hackernews]\nenabled = true\napi_base = \"{}\"\n",
        home.web.url("/hn")
    ));
    let pages = vec![
        api(&home, "hn_search.json"),
        api(&home, "hn_search_page1.json"),
    ];
    home.web.set_sequence("/hn/search", pages);
    let out = home.ok(&["crawl"]);
    assert!(out.contains("found 2"), "{out}");
    let found = by_kind(&home, "hackernews");
    assert_eq!(
        found.len(),
        2,
        "other sites' stories and text posts are ignored: {found:?}"
    );
    assert!(
        home.web.seen_path("/hn/search")[1].path.contains("page=1"),
        "the second page is asked for"
    );
    let m = found
        .iter()
        .find(|m| m["source"] == "https://news.ycombinator.com/item?id=40001234")
        .unwrap();
    assert_eq!(m["source"], "https://news.ycombinator.com/item?id=40001234");
    assert_eq!(m["status"], "verified");
    assert_eq!(m["author"]["name"], "pg");
    assert_eq!(
        m["author"]["url"],
        "https://news.ycombinator.com/user?id=pg"
    );
    assert_eq!(m["title"], "Hello, world");
    assert_eq!(m["published"], "2024-05-01T08:00:00Z");
    assert!(m["excerpt"].as_str().unwrap().contains("123 points"));
    let query = &home.web.seen_path("/hn/search")[0].path.clone();
    assert!(
        query.contains("restrictSearchableAttributes=url") && query.contains("127.0.0.1"),
        "{query}"
    );
    assert_eq!(
        home.web.hits("/"),
        0,
        "the social page itself is never fetched"
    );

    // A second crawl: the post is new, so it is asked about again, and nothing is duplicated.
    let out = home.ok(&["crawl"]);
    assert!(out.contains("found 0"), "{out}");
    let asked = home.web.seen_path("/hn/search");
    assert_eq!(asked.len(), 3, "a new post is asked about on every crawl");
    let last = &asked[2].path;
    assert!(
        last.contains("numericFilters=created_at_i%3E1714636800"),
        "only newer stories: {last}"
    );
    assert_eq!(by_kind(&home, "hackernews").len(), 2);
}

#[test]
fn reddit_asks_every_url_variant_and_honours_429_then_finds_it() {
    let home = fresh_home();
    home.write_config(&format!(
        "[sources.reddit]\nenabled = true\napi_base = \"{}\"\n",
        home.web.url("/reddit")
    ));
    let limited = Fixture {
        status: 429,
        ..api(&home, "reddit_info.json")
    }
    .header("x-ratelimit-reset", "1")
    .header("x-ratelimit-remaining", "0");
    home.web.set_sequence(
        "/reddit/api/info.json",
        vec![limited, api(&home, "reddit_info.json")],
    );
    let out = home.ok(&["crawl"]);
    assert!(out.contains("found 0"), "{out}");
    assert_eq!(
        home.web.seen_path("/reddit/api/info.json").len(),
        1,
        "a 429 stops the source at once, never hammered"
    );
    let status = home.ok(&["status"]);
    assert!(
        status.contains("reddit") && status.contains("rate limited"),
        "{status}"
    );

    // Within the reset window the source is skipped; after it, the next crawl finds the post.
    home.ok(&["crawl"]);
    assert_eq!(
        home.web.seen_path("/reddit/api/info.json").len(),
        1,
        "skipped until the reset"
    );
    std::thread::sleep(std::time::Duration::from_millis(2600));
    let out = home.ok(&["crawl"]);
    assert!(out.contains("found 1"), "{out}");
    let asked: Vec<String> = home
        .web
        .seen_path("/reddit/api/info.json")
        .iter()
        .skip(1)
        .map(|s| s.path.clone())
        .collect();
    assert_eq!(
        asked.len(),
        4,
        "https/http × with/without trailing slash: {asked:?}"
    );
    let m = &by_kind(&home, "reddit")[0];
    assert_eq!(
        m["source"],
        "https://www.reddit.com/r/rust/comments/1abcde/hello_world/"
    );
    assert_eq!(m["author"]["name"], "u/someone");
    assert_eq!(m["published"], "2024-05-01T08:00:00Z");
    assert!(
        home.web.seen_path("/reddit/api/info.json")[1].headers["user-agent"]
            .to_str()
            .unwrap()
            .starts_with("backfeed/")
    );
}

#[test]
fn bluesky_logs_in_refreshes_an_expired_session_and_checks_facets() {
    let home = bluesky_home();
    home.web.set(
        "/bsky/xrpc/com.atproto.server.createSession",
        api(&home, "bluesky_session.json"),
    );
    home.web.set(
        "/bsky/xrpc/com.atproto.server.refreshSession",
        api(&home, "bluesky_refreshed.json"),
    );
    let expired = Fixture {
        status: 400,
        ..api(&home, "bluesky_expired.json")
    };
    home.web.set_sequence(
        "/bsky/xrpc/app.bsky.feed.searchPosts",
        vec![
            api(&home, "bluesky_search.json"),
            api(&home, "bluesky_search_page2.json"),
            expired,
            api(&home, "bluesky_search_page2.json"),
        ],
    );

    // No password in the environment: reported, not crashed, and nothing else stops.
    let (code, out, err) = home.run(&["crawl"]);
    assert_eq!(code, 1, "a crawl with errors says so in its exit status");
    assert!(out.contains("errors 1"), "{out}");
    assert!(err.contains("backfeed status"), "{err}");
    assert!(home.ok(&["status"]).contains("TEST_BSKY_PASSWORD"));

    let env = [("TEST_BSKY_PASSWORD", "app-password-secret")];
    let (code, out, _) = home.run_env(&["crawl"], &env);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("found 2"),
        "the facet link and, on the cursor's next page, the embed link; not the bare text: {out}"
    );
    let pages = home.web.seen_path("/bsky/xrpc/app.bsky.feed.searchPosts");
    assert!(pages[1].path.contains("cursor=1"), "{}", pages[1].path);
    let login = home.web.seen("/bsky/xrpc/com.atproto.server.createSession");
    assert_eq!(login.len(), 1);
    let search = &home.web.seen_path("/bsky/xrpc/app.bsky.feed.searchPosts")[0];
    assert_eq!(search.headers["authorization"], "Bearer access-token-1");
    let found = by_kind(&home, "bluesky");
    let m = found
        .iter()
        .find(|m| m["author"]["name"] == "Alice")
        .unwrap();
    assert_eq!(
        m["source"],
        "https://bsky.app/profile/did:plc:abc123/post/3kxyzabc"
    );
    assert_eq!(m["author"]["name"], "Alice");
    assert_eq!(
        m["author"]["photo"],
        "https://cdn.bsky.app/img/avatar/alice.jpg"
    );

    // A new process logs in again (sessions live in memory only); this time the access token
    // has expired by the first search: the adapter refreshes the session and carries on.
    let (code, out, _) = home.run_env(&["crawl"], &env);
    assert_eq!(code, 0);
    assert!(out.contains("errors 0"), "{out}");
    assert_eq!(
        home.web
            .seen("/bsky/xrpc/com.atproto.server.createSession")
            .len(),
        2
    );
    let refresh = home
        .web
        .seen("/bsky/xrpc/com.atproto.server.refreshSession");
    assert_eq!(refresh.len(), 1);
    assert_eq!(
        refresh[0].headers["authorization"],
        "Bearer refresh-token-1"
    );
    let retried = home
        .web
        .seen_path("/bsky/xrpc/app.bsky.feed.searchPosts")
        .pop()
        .unwrap();
    assert_eq!(retried.headers["authorization"], "Bearer access-token-2");
    assert_eq!(by_kind(&home, "bluesky").len(), 2, "no duplicates");
    let last = home
        .web
        .seen_path("/bsky/xrpc/app.bsky.feed.searchPosts")
        .pop()
        .unwrap();
    assert!(
        last.path.contains("since=2024-05-03T08"),
        "incremental: {}",
        last.path
    );
    // The database and its write-ahead log (recent writes live there until a checkpoint).
    let mut db = std::fs::read(home.dir.path().join("backfeed.db")).unwrap();
    db.extend(std::fs::read(home.dir.path().join("backfeed.db-wal")).unwrap_or_default());
    let db = String::from_utf8_lossy(&db);
    for secret in [
        "app-password-secret",
        "access-token-1",
        "refresh-token-1",
        "access-token-2",
    ] {
        assert!(
            !db.contains(secret),
            "secrets and session tokens never reach the store"
        );
    }
}

#[test]
fn mastodon_turns_replies_favourites_and_boosts_of_your_toots_into_mentions() {
    let home = fresh_home();
    home.write_config(&format!(
        "[sources.mastodon]\nenabled = true\napi_base = \"{}\"\naccount = \"you\"\nsearch = true\ntoken_env = \"TEST_MASTODON_TOKEN\"\n",
        home.web.url("/masto")
    ));
    for (path, answer) in [
        ("/masto/api/v1/accounts/lookup", "mastodon_lookup.json"),
        (
            "/masto/api/v1/accounts/109/statuses",
            "mastodon_statuses.json",
        ),
        (
            "/masto/api/v1/statuses/110/context",
            "mastodon_context.json",
        ),
        (
            "/masto/api/v1/statuses/110/favourited_by",
            "mastodon_favourited_by.json",
        ),
        (
            "/masto/api/v1/statuses/110/reblogged_by",
            "mastodon_reblogged_by.json",
        ),
    ] {
        home.web.set(path, api(&home, answer));
    }
    home.web.set(
        "/masto/api/v2/search",
        Fixture {
            status: 401,
            ..Fixture::with_type(
                "application/json",
                b"{\"error\":\"The access token is invalid\"}",
            )
        },
    );
    let env = [("TEST_MASTODON_TOKEN", "bad-token")];
    let (_, out, _) = home.run_env(&["crawl"], &env);
    assert!(out.contains("errors 1"), "the bad token is reported: {out}");
    let status = home.ok(&["status"]);
    assert!(
        status.contains("mastodon") && status.contains("TEST_MASTODON_TOKEN"),
        "{status}"
    );
    assert!(
        !status.contains("bad-token"),
        "secrets never reach the log or status"
    );

    // Without search, the account's toots give three mentions.
    home.write_config(&format!(
        "[sources.mastodon]\nenabled = true\napi_base = \"{}\"\naccount = \"you\"\ntoken_env = \"TEST_MASTODON_TOKEN\"\n",
        home.web.url("/masto")
    ));
    let (_, out, _) = home.run_env(&["crawl"], &env);
    assert!(out.contains("found 3"), "{out}");
    let found = by_kind(&home, "mastodon");
    let of = |source: &str| {
        found
            .iter()
            .find(|m| m["source"] == source)
            .unwrap_or_else(|| panic!("{source}: {found:#?}"))
    };
    let reply = of("https://social.example/@carol/120");
    assert_eq!(reply["type"], "reply");
    assert_eq!(reply["author"]["name"], "Carol");
    assert!(
        !reply["content_html"].as_str().unwrap().contains("script"),
        "status HTML is sanitized"
    );
    assert_eq!(
        of("https://mastodon.example/@you/110#favourited-by-201")["type"],
        "like"
    );
    assert_eq!(
        of("https://mastodon.example/@you/110#reblogged-by-202")["type"],
        "repost"
    );
    assert_eq!(
        home.web
            .seen_path("/masto/api/v1/statuses/111/context")
            .len(),
        0,
        "toots that do not link are not followed"
    );
    for call in ["context", "favourited_by", "reblogged_by"] {
        let seen = home
            .web
            .seen_path(&format!("/masto/api/v1/statuses/110/{call}"));
        assert!(!seen.is_empty(), "{call} was asked");
        for request in seen {
            assert_eq!(
                request.headers["authorization"], "Bearer bad-token",
                "{call} carries the account's token"
            );
        }
    }
    let (_, out, _) = home.run_env(&["crawl"], &env);
    assert!(out.contains("found 0"), "{out}");
    assert_eq!(by_kind(&home, "mastodon").len(), 3);
    let jf2 = home.dir.path().join("x");
    home.ok(&["export", "--out", jf2.to_str().unwrap()]);
    let feed: serde_json::Value =
        serde_json::from_str(&read(&jf2.join("mentions.jf2.json"))).unwrap();
    let properties: Vec<&str> = feed["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["wm-property"].as_str().unwrap())
        .collect();
    for p in ["in-reply-to", "like-of", "repost-of"] {
        assert!(properties.contains(&p), "{properties:?}");
    }
    // Brid.gy then sends a webmention for Carol's toot: its page names the toot as its u-url.
    // One reply, one mention: the toot (the original) is kept, Brid.gy's copy joins it.
    let bridgy = home.source(
        "/bridgy/comment/mastodon/120",
        &format!(
            r#"<div class="h-entry"><a class="p-author h-card" href="https://social.example/@carol">Carol</a>
            <a class="u-in-reply-to" href="{}">re</a><p class="e-content">Lovely post!</p>
            <a class="u-url" href="https://social.example/@carol/120">original</a></div>"#,
            home.post_url()
        ),
    );
    home.ok(&["submit", &bridgy, &home.post_url()]);
    assert_eq!(home.status_of(&bridgy), "deleted");
    assert_eq!(
        home.status_of("https://social.example/@carol/120"),
        "verified"
    );
    let toot = home
        .mentions()
        .into_iter()
        .find(|m| m["source"] == "https://social.example/@carol/120")
        .unwrap();
    assert_eq!(toot["syndication"], serde_json::json!([bridgy]), "{toot}");
}

#[test]
fn reddit_uses_app_only_oauth_when_credentials_are_in_the_environment() {
    let home = fresh_home();
    home.write_config(&format!(
        "[sources.reddit]\nenabled = true\napi_base = \"{}\"\noauth_api_base = \"{}\"\n",
        home.web.url("/reddit"),
        home.web.url("/reddit-oauth")
    ));
    home.web.set(
        "/reddit/api/v1/access_token",
        api(&home, "reddit_token.json"),
    );
    home.web
        .set("/reddit-oauth/api/info", api(&home, "reddit_info.json"));
    let env = [
        ("BACKFEED_REDDIT_CLIENT_ID", "my-id"),
        ("BACKFEED_REDDIT_CLIENT_SECRET", "my-secret"),
    ];
    let (code, out, _) = home.run_env(&["crawl"], &env);
    assert_eq!(code, 0);
    assert!(out.contains("found 1"), "{out}");
    let token_request = &home.web.seen("/reddit/api/v1/access_token")[0];
    // base64("my-id:my-secret")
    assert_eq!(
        token_request.headers["authorization"],
        "Basic bXktaWQ6bXktc2VjcmV0"
    );
    assert_eq!(
        token_request.headers["content-type"],
        "application/x-www-form-urlencoded"
    );
    let info = home.web.seen_path("/reddit-oauth/api/info");
    assert_eq!(info.len(), 4);
    assert_eq!(info[0].headers["authorization"], "bearer app-token-123");
    assert_eq!(
        home.web.seen_path("/reddit/api/info.json").len(),
        0,
        "the anonymous API is not used"
    );

    // Refused credentials are reported by name, and nothing else stops.
    home.web
        .set("/reddit/api/v1/access_token", Fixture::status(401));
    let (code, out, _) = home.run_env(&["crawl"], &env);
    assert_eq!(code, 1);
    assert!(out.contains("errors 1"), "{out}");
    let status = home.ok(&["status"]);
    assert!(
        status.contains("BACKFEED_REDDIT_CLIENT_ID") && !status.contains("my-secret"),
        "{status}"
    );
}

#[test]
fn an_unreachable_bluesky_is_not_blamed_on_the_password() {
    let home = bluesky_home();
    // Slower than the fetch timeout (2 s in tests).
    home.web.set(
        "/bsky/xrpc/com.atproto.server.createSession",
        api(&home, "bluesky_session.json").delayed(3_000),
    );
    let env = [("TEST_BSKY_PASSWORD", "app-password-secret")];
    let (_, out, _) = home.run_env(&["crawl"], &env);
    assert!(out.contains("errors 1"), "{out}");
    let status = home.ok(&["status"]);
    assert!(status.contains("timed out"), "{status}");
    assert!(
        !status.contains("check $TEST_BSKY_PASSWORD"),
        "a timeout says nothing about the password: {status}"
    );
}
