//! Moving in and out through the binary: a WordPress export (every comment type and status,
//! CDATA, umlauts, «, threaded comments) and webmention.io's JF2 imported onto a blog that moved
//! (`--rewrite`), idempotently and in one transaction; and backfeed's own JSONL backup restored
//! into an empty store with every field the same, and from a SQLite store into a PostgreSQL one.

mod support;
use support::*;

const OLD: &str = "http://old-blog.example/";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/fixtures/import/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// A fixture written into the home's folder (webmention.io's targets on the old domain).
fn fixture_file(home: &Home, name: &str) -> String {
    let path = home.dir.path().join(name);
    std::fs::write(&path, fixture(name).replace("{OLD}", OLD)).unwrap();
    path.to_str().unwrap().to_string()
}

fn rewrite(home: &Home) -> String {
    format!("{OLD}={}", home.web.url("/blog/"))
}

fn by_source(home: &Home) -> std::collections::HashMap<String, serde_json::Value> {
    home.mentions()
        .into_iter()
        .map(|m| (m["source"].as_str().unwrap().to_string(), m))
        .collect()
}

#[test]
fn a_wordpress_export_becomes_mentions_of_its_posts() {
    let home = Home::new("");
    let wxr = fixture_file(&home, "wordpress.xml");
    let rw = rewrite(&home);
    // A dry run counts and writes nothing.
    let dry = home.ok(&["import", &wxr, "--rewrite", &rw, "--dry-run"]);
    assert!(dry.contains("imported 5"), "{dry}");
    assert!(
        dry.contains("imported as: "),
        "a dry run says by status: {dry}"
    );
    assert!(home.mentions().is_empty());

    let out = home.ok(&["import", &wxr, "--rewrite", &rw, "--json"]);
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary["read"], 7, "{summary}");
    assert_eq!(summary["imported"], 5);
    assert_eq!(summary["merged"], 0);
    assert_eq!(
        summary["skipped"]["a regular comment, not a linkback"], 2,
        "a comment and its threaded reply"
    );
    let post = home.web.url("/blog/2009/01/sein-oder-werden/");
    let m = by_source(&home);
    let topsy = &m["http://topsy.example/trackback?url=http%3A%2F%2Fold-blog.example%2F2009%2F01%2Fsein-oder-werden%2F"];
    assert_eq!(topsy["kind"], "pingback");
    assert_eq!(topsy["status"], "verified");
    assert_eq!(topsy["target"], post.as_str(), "matched through --rewrite");
    assert_eq!(
        topsy["title"],
        "Tweets that mention Sein oder Werden – das ist hier die Frage! « -- Topsy.com"
    );
    assert_eq!(
        topsy["first_seen"], "2009-01-13T08:15:00Z",
        "comment_date_gmt"
    );
    assert_eq!(topsy["imported"], "wxr");
    let posts: Vec<serde_json::Value> =
        serde_json::from_str(&home.ok(&["posts", "--json"])).unwrap();
    let imported_post = posts.iter().find(|p| p["url"] == post.as_str()).unwrap();
    assert_eq!(
        imported_post["published"], "2009-01-12T10:00:00Z",
        "the post's own date (wp:post_date_gmt)"
    );
    assert!(
        topsy["excerpt"]
            .as_str()
            .unwrap()
            .contains("Müller: „Sein oder Werden“"),
        "{topsy}"
    );
    let joerg = &m["http://joerg.example/2009/01/antwort/"];
    assert_eq!(
        (joerg["kind"].as_str(), joerg["status"].as_str()),
        (Some("trackback"), Some("held"))
    );
    assert_eq!(joerg["author"]["name"], "Jörgs Blog");
    assert!(
        joerg["excerpt"]
            .as_str()
            .unwrap()
            .contains("anders & schreibe")
    );
    assert_eq!(m["http://spam.example/pills"]["status"], "rejected");
    assert_eq!(m["http://gone.example/2009/link"]["status"], "deleted");
    let carol = &m["https://carol.example/notes/2021/reply"];
    assert_eq!(carol["kind"], "webmention");
    assert_eq!(carol["type"], "reply");
    assert_eq!(carol["author"]["name"], "Carol");
    let content = carol["content_html"].as_str().unwrap();
    assert!(
        content.contains("<em>really</em>") && !content.contains("script"),
        "{content}"
    );
    let posts: Vec<serde_json::Value> =
        serde_json::from_str(&home.ok(&["posts", "--json"])).unwrap();
    assert_eq!(
        posts[0]["title"],
        "Sein oder Werden – das ist hier die Frage!"
    );
    assert_eq!(
        posts[0]["mentions"], 2,
        "published: the pingback and the webmention"
    );

    // The same file again changes nothing.
    let before = home.mentions();
    let again = home.ok(&["import", &wxr, "--rewrite", &rw]);
    assert!(
        again.contains("imported 0 · merged 0 · unchanged 5"),
        "{again}"
    );
    assert_eq!(home.mentions(), before);

    // Reverify leaves imported history alone: no fetch, no decision.
    let decisions = home.log().len();
    home.ok(&["reverify"]);
    assert_eq!(home.log().len(), decisions);
    assert_eq!(home.mentions(), before);
}

#[test]
fn a_broken_file_stops_at_its_position_and_writes_nothing() {
    let home = Home::new("");
    let text = fixture("wordpress.xml");
    let cut = text.find("<wp:comment_id>46").unwrap();
    let truncated = home.dir.path().join("truncated.xml");
    std::fs::write(&truncated, &text[..cut]).unwrap();
    let (code, _, err) = home.run(&[
        "import",
        truncated.to_str().unwrap(),
        "--rewrite",
        &rewrite(&home),
    ]);
    assert_eq!(code, 1);
    assert!(
        err.contains("nothing was written") && err.contains("byte"),
        "{err}"
    );
    assert!(
        home.mentions().is_empty(),
        "the earlier comments were not kept either"
    );
    let jf2 = home.dir.path().join("broken.json");
    std::fs::write(&jf2, "{\"type\":\"feed\",\"children\":[{\"wm-source\":").unwrap();
    let (code, _, err) = home.run(&["import", jf2.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("page 1"), "{err}");
}

#[test]
fn webmention_io_history_keeps_types_authors_and_dates() {
    let home = Home::new("");
    let jf2 = fixture_file(&home, "webmention-io.json");
    let out = home.ok(&["import", &jf2, "--rewrite", &rewrite(&home)]);
    assert!(out.contains("imported 5"), "{out}");
    let m = by_source(&home);
    let like = &m["https://lena.example/likes/1"];
    assert_eq!(like["type"], "like");
    assert_eq!(like["kind"], "webmention");
    assert_eq!(like["author"]["photo"], "https://avatars.example/lena.jpg");
    assert_eq!(like["first_seen"], "2023-04-01T10:05:00Z", "wm-received");
    assert_eq!(like["imported"], "webmention.io");
    let reply = &m["https://max.example/replies/7"];
    assert_eq!(reply["type"], "reply");
    assert_eq!(reply["author"]["name"], "Max Müller");
    assert_eq!(reply["published"], "2023-04-02T10:00:00+02:00");
    let html = reply["content_html"].as_str().unwrap();
    assert!(
        html.contains("<b>genau</b>") && !html.contains("onerror"),
        "{html}"
    );
    assert_eq!(m["https://ola.example/r/1"]["type"], "repost");
    assert_eq!(m["https://bo.example/b/1"]["type"], "bookmark");
    let mention = &m["https://zed.example/m/1"];
    assert_eq!(mention["type"], "mention");
    assert_eq!(mention["title"], "A post that mentions it");
    // Several pages saved one after another read as one history.
    let pages = home.dir.path().join("pages.json");
    let page = fixture("webmention-io.json").replace("{OLD}", OLD);
    std::fs::write(&pages, format!("{page}\n{page}")).unwrap();
    let out = home.ok(&[
        "import",
        pages.to_str().unwrap(),
        "--rewrite",
        &rewrite(&home),
    ]);
    assert!(
        out.contains("read 10 · imported 0 · merged 0 · unchanged 10"),
        "{out}"
    );
    // The API serves them as webmention.io did.
    let daemon = home.serve();
    let api: serde_json::Value = client()
        .get(daemon.url("/api/mentions.jf2?per-page=10"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(api["children"].as_array().unwrap().len(), 5);
}

/// Something of everything in `home`'s store: imported history (every comment type and status),
/// a native mention held for moderation, a blocked domain.
fn fill_with_history(home: &Home) {
    home.ok(&["crawl"]);
    home.ok(&[
        "import",
        &fixture_file(home, "wordpress.xml"),
        "--rewrite",
        &rewrite(home),
    ]);
    let source = home.linking_page("/native/1", "A native mention");
    home.run(&["submit", &source, &home.post_url()]);
    home.ok(&["block", "spam.example"]);
    // One published mention taken down: `/api/deleted.json` and `deleted.json` name it.
    let published = home
        .mentions()
        .into_iter()
        .find(|m| m["status"] == "verified")
        .expect("the history has published mentions");
    home.ok(&["reject", &published["id"].to_string()]);
}

/// `export --format jsonl` of `home`'s store, in its folder under `name`.
fn backup(home: &Home, name: &str) -> String {
    let backup = home.dir.path().join(name);
    let out = home.ok(&[
        "export",
        "--format",
        "jsonl",
        "--out",
        backup.to_str().unwrap(),
    ]);
    assert!(out.contains("backed up"), "{out}");
    backup.to_str().unwrap().to_string()
}

/// What people and site builds read of a store: the listings, and every static file `export
/// --out` writes (the feeds in every format, per post and for the site).
fn what_readers_see(home: &Home, out_dir: &str) -> Vec<(String, String)> {
    let mut seen: Vec<(String, String)> = [
        vec!["mentions", "--json"],
        vec!["posts", "--json"],
        vec!["log", "--json", "--since", "100w"],
        vec!["block", "--list"],
    ]
    .into_iter()
    .map(|args| (args.join(" "), home.ok(&args)))
    .collect();
    let dir = home.dir.path().join(out_dir);
    home.ok(&["export", "--out", dir.to_str().unwrap()]);
    let mut folders = vec![dir.clone()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else {
                let name = path.strip_prefix(&dir).unwrap().display().to_string();
                seen.push((name, std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    seen.sort();
    seen
}

#[test]
fn a_jsonl_backup_restores_every_field_into_an_empty_store() {
    let home = Home::new("[moderation]\nmode = \"queue\"\n");
    fill_with_history(&home);
    let backup = backup(&home, "backup.jsonl");

    let fresh = Home::new("[moderation]\nmode = \"queue\"\n");
    let restored = fresh.ok(&["import", &backup]);
    assert!(restored.contains("jsonl"), "{restored}");
    let mentions = |h: &Home| h.ok(&["mentions", "--json"]);
    assert_eq!(
        mentions(&fresh),
        mentions(&home),
        "every mention, every field"
    );
    assert_eq!(
        fresh.ok(&["log", "--json", "--since", "100w"]),
        home.ok(&["log", "--json", "--since", "100w"])
    );
    assert_eq!(
        fresh.ok(&["block", "--list"]),
        home.ok(&["block", "--list"])
    );
    assert_eq!(
        fresh.ok(&["posts", "--json"]),
        home.ok(&["posts", "--json"])
    );
    // Below what the commands show too: every column of every row.
    let rows = |h: &Home, table: &str| -> Vec<String> {
        h.sql()
            .rows(&format!("SELECT * FROM {table} ORDER BY id"))
            .into_iter()
            .map(|row| row.join("|"))
            .collect()
    };
    for table in ["posts", "mentions", "decisions"] {
        assert_eq!(rows(&home, table), rows(&fresh, table), "{table}");
    }
    // Restoring again changes nothing.
    fresh.ok(&["import", &backup]);
    assert_eq!(mentions(&fresh), mentions(&home));
    assert_eq!(
        fresh.ok(&["log", "--json", "--since", "100w"]),
        home.ok(&["log", "--json", "--since", "100w"])
    );
}

/// The contract's way from one backend to the other: `export --format jsonl` with the SQLite
/// config, `import` with the PostgreSQL one — and every listing and every feed file the same.
#[test]
fn a_sqlite_store_moves_to_postgresql_and_readers_see_the_same() {
    let Some(database) = backfeed::store::testing::TestDatabase::create("move") else {
        return;
    };
    let extra = "[moderation]\nmode = \"queue\"\n";
    let mut home = Home::new(extra);
    home.postgres = None;
    home.write_config(extra);
    fill_with_history(&home);
    let on_sqlite = what_readers_see(&home, "from-sqlite");
    assert!(
        on_sqlite
            .iter()
            .any(|(name, text)| name == "mentions.atom" && text.contains("<entry>")),
        "the feeds have entries to compare"
    );
    assert!(
        on_sqlite
            .iter()
            .any(|(name, text)| name == "deleted.json" && text.contains("deleted_at")),
        "a deletion to carry over"
    );
    let backup = backup(&home, "move.jsonl");

    home.postgres = Some(database);
    home.write_config(extra);
    assert!(
        home.ok(&["mentions", "--json"]).trim() == "[]",
        "a new, empty store"
    );
    home.ok(&["import", &backup]);
    let on_postgres = what_readers_see(&home, "from-postgres");
    assert_eq!(on_postgres.len(), on_sqlite.len(), "the same files");
    for ((name, sqlite), (_, postgres)) in on_sqlite.iter().zip(&on_postgres) {
        assert_eq!(postgres, sqlite, "{name}");
    }
}

#[test]
fn a_hostile_backup_is_cleaned_on_the_way_in_and_the_fragment_cleans_an_old_store() {
    let home = Home::new("");
    home.without_rate_limits();
    let backup = home.hostile_backup();
    // Restored into a store of its own (its mentions are of the first home's post).
    let fresh = Home::new("");
    let out = fresh.ok(&["import", backup.to_str().unwrap()]);
    assert!(
        out.contains("not http(s)"),
        "the javascript: source is skipped: {out}"
    );
    let mentions = fresh.mentions();
    assert_eq!(mentions.len(), 1, "{mentions:?}");
    let stored = serde_json::to_string(&mentions).unwrap();
    assert!(!carries_script(&stored), "stored as given: {stored}");
    let m = &mentions[0];
    assert!(
        m["content_html"]
            .as_str()
            .unwrap()
            .contains("<b>bold words</b>"),
        "{m}"
    );
    assert_eq!(
        m["title"], "Evil txt.exe title",
        "controls and bidi overrides removed"
    );
    assert_eq!(m["author"]["name"], "Mallory");
    assert!(
        m["author"]["url"].is_null() && m["author"]["photo"].is_null(),
        "{m}"
    );

    // A store that holds hostile rows anyway (an older version, a hand edit): the fragment
    // and the API's links still carry nothing that runs.
    fresh.poison_store();
    let daemon = fresh.serve();
    let target = serde_urlencoded::to_string([("target", home.post_url())]).unwrap();
    let fragment = daemon.text(&format!("/mentions.html?{target}"));
    assert!(fragment.contains("bold words"), "{fragment}");
    assert!(!carries_script(&fragment), "{fragment}");
}

#[test]
fn webmention_io_author_links_must_be_http() {
    let home = Home::new("");
    home.ok(&["crawl"]);
    let file = home.dir.path().join("wm.json");
    let entry = |source: &str, url: &str, photo: &str| {
        serde_json::json!({"wm-source": source, "wm-target": home.post_url(), "wm-property": "like-of",
            "author": {"name": "X", "url": url, "photo": photo}})
    };
    let feed = serde_json::json!({"type": "feed", "children": [
        entry("https://a.example/1", "javascript:alert(1)", "data:image/png;base64,AAAA"),
        entry("https://b.example/1", "vbscript:msgbox", "JaVaScRiPt:alert(1)"),
        entry("https://c.example/1", "https://c.example/", "https://c.example/me.jpg"),
    ]});
    std::fs::write(&file, feed.to_string()).unwrap();
    home.ok(&["import", file.to_str().unwrap()]);
    let by = |s: &str| {
        home.mentions()
            .into_iter()
            .find(|m| m["source"] == s)
            .unwrap_or_else(|| panic!("{s} imported"))
    };
    for s in ["https://a.example/1", "https://b.example/1"] {
        let m = by(s);
        assert!(
            m["author"]["url"].is_null() && m["author"]["photo"].is_null(),
            "{m}"
        );
    }
    let ok = by("https://c.example/1");
    assert_eq!(ok["author"]["url"], "https://c.example/");
    assert_eq!(ok["author"]["photo"], "https://c.example/me.jpg");
}

#[test]
fn a_restored_pending_mention_is_checked_again() {
    let home = Home::new("");
    home.ok(&["crawl"]);
    // A candidate whose source failed for now: pending, waiting for a retry.
    home.web.set("/later/1", Fixture::status(503));
    let source = home.web.url("/later/1");
    home.run(&["submit", &source, &home.post_url()]);
    assert_eq!(home.mentions()[0]["status"], "pending");
    let backup = home.dir.path().join("pending.jsonl");
    home.ok(&[
        "export",
        "--format",
        "jsonl",
        "--out",
        backup.to_str().unwrap(),
    ]);

    let fresh = Home::new("");
    fresh.ok(&["import", backup.to_str().unwrap()]);
    home.linking_page("/later/1", "Back up now");
    fresh.ok(&["crawl"]);
    let m = fresh
        .mentions()
        .into_iter()
        .find(|m| m["source"] == source.as_str())
        .unwrap();
    assert_eq!(m["status"], "verified", "{m}");
}

#[test]
fn a_bad_byte_is_reported_where_it_is_and_an_endless_line_is_not_read_whole() {
    let home = Home::new("");
    let wxr = home.dir.path().join("bad.xml");
    let mut bytes =
        b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss><channel><item><title>ok ".to_vec();
    bytes.push(0xff);
    bytes.extend_from_slice(b" bad</title></item></channel></rss>\n");
    std::fs::write(&wxr, bytes).unwrap();
    let (code, _, err) = home.run(&["import", wxr.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    let at: usize = err
        .split("near byte ")
        .nth(1)
        .and_then(|rest| rest.split(':').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a position: {err}"));
    assert!(
        (60..100).contains(&at),
        "near the bad byte (70), not 0: {err}"
    );

    let jsonl = home.dir.path().join("long.jsonl");
    let long = format!(
        "{{\"table\":\"blocks\",\"domain\":\"{}\"}}\n",
        "x".repeat(5 << 20)
    );
    std::fs::write(&jsonl, long).unwrap();
    let (code, _, err) = home.run(&["import", jsonl.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("line 1 is longer than 4 MiB"), "{err}");
}

#[test]
fn wordpress_escapes_in_titles_are_decoded_on_import_and_repaired_in_old_stores() {
    let home = Home::new("");
    let wxr = home.dir.path().join("escaped.xml");
    let text = fixture("wordpress.xml")
        .replace(
            OLD,
            &format!("{}/", home.web.url("/blog").trim_end_matches('/')),
        )
        .replace("« -- Topsy.com", "&laquo; Dave&#039;s Weblog");
    std::fs::write(&wxr, text).unwrap();
    home.ok(&["import", wxr.to_str().unwrap()]);
    let titles: Vec<String> = home
        .mentions()
        .iter()
        .filter_map(|m| m["title"].as_str().map(str::to_string))
        .collect();
    assert!(
        titles.iter().any(|t| t.ends_with("« Dave's Weblog")),
        "decoded once, at import: {titles:?}"
    );
    assert!(!titles.iter().any(|t| t.contains("&#039;")), "{titles:?}");
    // A store an older version filled: `migrate` (and serve's start) repair it.
    home.sql().execute(
        "UPDATE mentions SET title = 'Link roundup #12 &laquo; Dave&#039;s Weblog' WHERE imported = 'wxr'",
        &[],
    );
    let out = home.ok(&["migrate"]);
    assert!(out.contains("decoded HTML escapes"), "{out}");
    assert!(
        home.mentions()
            .iter()
            .filter(|m| m["imported"] == "wxr")
            .all(|m| m["title"] == "Link roundup #12 « Dave's Weblog"),
        "{:?}",
        home.mentions()
    );
}

#[test]
fn an_import_keeps_only_the_types_collected() {
    let home = Home::new("[moderation]\ncollect = [\"reply\", \"mention\"]\n");
    home.ok(&["crawl"]);
    let file = home.dir.path().join("wm.json");
    let entry = |source: &str, property: &str| serde_json::json!({"wm-source": source, "wm-target": home.post_url(), "wm-property": property});
    let feed = serde_json::json!({"type": "feed", "children": [
        entry("https://a.example/like", "like-of"),
        entry("https://b.example/reply", "in-reply-to"),
    ]});
    std::fs::write(&file, feed.to_string()).unwrap();
    let out = home.ok(&["import", file.to_str().unwrap()]);
    assert!(out.contains("type not collected"), "{out}");
    let sources: Vec<String> = home
        .mentions()
        .iter()
        .map(|m| m["source"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(sources, ["https://b.example/reply"]);
}

/// A webmention.io file in `home`'s folder: `n` likes of its post, each from a source of its own.
fn many_likes(home: &Home, n: usize) -> String {
    let children: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            serde_json::json!({
                "type": "entry",
                "author": {"type": "card", "name": format!("Fan {i}"), "url": format!("https://fan{i}.example/")},
                "wm-source": format!("https://fan{i}.example/likes/{i}"),
                "wm-target": home.post_url(),
                "wm-property": "like-of",
                "wm-received": "2024-05-01T10:00:00Z",
            })
        })
        .collect();
    let path = home.dir.path().join(format!("likes-{n}.json"));
    std::fs::write(
        &path,
        serde_json::json!({"type": "feed", "children": children}).to_string(),
    )
    .unwrap();
    path.to_str().unwrap().to_string()
}

/// The names of the indexes on the mentions table, whatever the store's engine.
fn mention_indexes(home: &Home) -> Vec<String> {
    let sql = if home.postgres.is_some() {
        "SELECT indexname FROM pg_indexes WHERE tablename = 'mentions' ORDER BY 1"
    } else {
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'mentions' ORDER BY 1"
    };
    home.sql()
        .rows(sql)
        .into_iter()
        .map(|r| r[0].clone())
        .collect()
}

/// What the SQLite store's lock file says of the process that last held it.
fn serve_lock_holder(home: &Home) -> String {
    std::fs::read_to_string(home.dir.path().join("backfeed.db.serve-lock")).unwrap()
}

#[test]
fn a_large_import_alone_keeps_the_stores_indexes_and_on_sqlite_is_written_in_bulk() {
    let home = Home::new("");
    home.ok(&["crawl"]);
    let indexes = mention_indexes(&home);
    assert!(indexes.len() > 3, "{indexes:?}");
    let likes = many_likes(&home, 10_000);
    let out = home.ok(&["import", &likes]);
    assert!(out.contains("read 10000 · imported 10000"), "{out}");
    if home.postgres.is_none() {
        // No serve used the store: the import took it alone, in one transaction, with the
        // mentions' indexes built again at the end.
        let lock = serve_lock_holder(&home);
        assert!(lock.contains("(backfeed import)"), "{lock}");
    }
    assert_eq!(mention_indexes(&home), indexes);
    let counted = home.sql().query_i64(
        "SELECT COUNT(*) FROM mentions WHERE status = 'verified' AND type = 'like'",
        &[],
    );
    assert_eq!(counted, 10_000);
    // Merging still finds every pair: the same file again changes nothing.
    let out = home.ok(&["import", &likes]);
    assert!(
        out.contains("imported 0 · merged 0 · unchanged 10000"),
        "{out}"
    );
    // A serve then starts, and publishes them all.
    let daemon = home.serve();
    let count: serde_json::Value = client()
        .get(daemon.url("/api/count.json"))
        .query(&[("target", home.post_url())])
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(count["count"], 10_000, "{count}");
}

#[test]
fn a_large_import_beside_a_running_serve_completes_and_the_serve_keeps_its_lock_and_its_store() {
    let home = Home::new("");
    home.ok(&["crawl"]);
    let daemon = home.serve();
    let out = home.ok(&["import", &many_likes(&home, 10_000)]);
    assert!(out.contains("read 10000 · imported 10000"), "{out}");
    if home.postgres.is_none() {
        let lock = serve_lock_holder(&home);
        assert!(lock.contains("(backfeed serve)"), "{lock}");
    }
    // The serve still writes: a ping is accepted.
    let source = home.linking_page("/after-import", "A mention after the import");
    let answer = client()
        .post(daemon.url("/webmention"))
        .form(&[("source", source), ("target", home.post_url())])
        .send()
        .unwrap();
    assert!(answer.status().is_success(), "{}", answer.status());
}
