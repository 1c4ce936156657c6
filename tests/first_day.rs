//! A blogger's first day, through the binary: logs `jq` can read, an outage of one's own site
//! that loses nothing, a misconfigured first run that says so, failures that show, moderation
//! that leaves no stale reason, and a CLI that explains itself.

mod support;
use support::*;

#[test]
fn json_logs_name_the_post_without_colliding_with_the_module() {
    let home = Home::new("");
    home.ok(&["crawl"]);
    let source = home.linking_page("/j/1", "json");
    let (_, _, err) = home.run_env(
        &["--log-format", "json", "submit", &source, &home.post_url()],
        &[("RUST_LOG", "backfeed=info")],
    );
    let decision = err
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| l["message"] == "decision")
        .unwrap_or_else(|| panic!("{err}"));
    assert_eq!(decision["post"], home.post_url().as_str());
    assert_eq!(decision["source"], source.as_str());
    assert!(
        decision["target"].as_str().unwrap().starts_with("backfeed"),
        "tracing's own target stays: {decision}"
    );
    // A run's counts are numbers in JSON, not strings.
    let (_, _, err) = home.run_env(
        &["--log-format", "json", "crawl"],
        &[("RUST_LOG", "backfeed=info")],
    );
    let finished = err
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| l["message"] == "scheduled run finished")
        .unwrap_or_else(|| panic!("{err}"));
    assert!(
        finished["found"].is_u64() && finished["errors"].is_u64(),
        "{finished}"
    );
    // `notify --help` explains --digest.
    let help = home.ok(&["notify", "--help"]);
    assert!(
        help.contains("--digest") && help.contains("digest now"),
        "{help}"
    );
}

#[test]
fn an_outage_of_your_own_site_asks_senders_to_retry() {
    let home = Home::new("");
    home.ok(&["crawl"]);
    let daemon = home.serve();
    home.web.set("/blog/2024/new/", Fixture::status(503));
    let source = home.linking_page("/o/1", "outage");
    let r = client()
        .post(daemon.url("/webmention"))
        .form(&[
            ("source", source.as_str()),
            ("target", &home.web.url("/blog/2024/new/")),
        ])
        .send()
        .unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let text = r.text().unwrap();
    assert!(text.contains("try again later"), "{text}");
    assert!(
        !text.contains("503") && !text.contains("error"),
        "no internals: {text}"
    );
}

#[test]
fn a_misconfigured_first_run_says_so() {
    let home = Home::new("");
    // The example's loopback public_url: snippet warns.
    let (code, out, err) = home.run(&["snippet"]);
    assert_eq!(code, 0);
    assert!(out.contains("rel=\"webmention\""));
    assert!(
        err.contains("warning") && err.contains("public_url"),
        "{err}"
    );
    // serve crawls at start: the posts are known without waiting for the first tick.
    let daemon = home.serve();
    assert!(eventually(10, || home.ok(&["posts"]).contains(POST_PATH)));
    let log = daemon.log_text();
    assert!(log.contains("serving") && log.contains("feeds=1"), "{log}");
    drop(daemon);
    // A relative store path is relative to the config file, not to where backfeed runs.
    let config = std::fs::read_to_string(home.config_path()).unwrap();
    let store = home.dir.path().join("backfeed.db");
    std::fs::write(
        home.config_path(),
        config.replace(
            &format!("path = \"{}\"", store.display()),
            "path = \"data/rel.db\"",
        ),
    )
    .unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_backfeed"))
        .current_dir(elsewhere.path())
        .args(["--config", home.config_path().to_str().unwrap(), "status"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(home.dir.path().join("data/rel.db").exists());
    assert!(!elsewhere.path().join("data").exists());
}

#[test]
fn failures_show_in_the_exit_status_the_summary_and_status() {
    let home = Home::new("");
    home.write_config(&format!(
        "[[watch]]\nurl = \"{}\"\n[[watch]]\nurl = \"{}\"\n",
        home.web.url("/broken/1"),
        home.web.url("/broken/2")
    ));
    for path in ["/broken/1", "/broken/2"] {
        home.web.set(path, Fixture::status(500));
    }
    let (code, out, err) = home.run(&["crawl"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("errors 2"), "{out}");
    assert!(err.contains("backfeed status"), "{err}");
    // Backing off, the next crawl does not fetch them, and still says they fail.
    let (code, out, _) = home.run(&["crawl"]);
    assert_eq!(code, 1);
    assert!(out.contains("failing 2"), "{out}");
    let status = home.ok(&["status"]);
    assert!(
        status.contains("FAILING") && status.contains("next try: 20"),
        "{status}"
    );
    assert!(
        !status.contains("crawl      last never"),
        "a crawl by hand counts: {status}"
    );
}

#[test]
fn a_rejection_leaves_no_stale_reason_and_refuses_later_trackbacks() {
    let home = Home::new("");
    home.ok(&["crawl"]);
    let source = home.linking_page("/r/1", "rejected");
    home.ok(&["submit", &source, &home.post_url()]);
    let id = home.mentions()[0]["id"].to_string();
    home.ok(&["reject", &id]);
    let listed = home.ok(&["mentions"]);
    assert!(listed.contains("rejected by hand"), "{listed}");
    assert!(!listed.contains("source links to the post"), "{listed}");
    let daemon = home.serve();
    let body = client()
        .post(daemon.url("/trackback/hello"))
        .form(&[("url", source.as_str())])
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(body.contains("<error>1</error>"), "{body}");
}

#[test]
fn the_cli_explains_itself_and_refuses_bad_flags_before_touching_the_store() {
    let home = Home::new("");
    let (code, _, err) = home.run(&["mentions", "--status", "foo"]);
    assert_eq!(code, 2);
    assert!(err.contains("--status"), "{err}");
    assert!(
        !home.dir.path().join("backfeed.db").exists(),
        "no store was created for a usage error"
    );
    let (_, help, _) = home.run(&["mentions", "--help"]);
    assert!(help.contains("--json") && help.contains("JSON"), "{help}");
    let (_, help, _) = home.run(&["approve", "--help"]);
    assert!(help.contains("The mention's id"), "{help}");
    assert!(home.ok(&["log"]).contains("No decisions"));
    home.ok(&["crawl"]);
    assert!(home.ok(&["posts"]).trim_start().starts_with("MENTIONS"));
}

#[test]
fn metrics_an_operator_can_alert_on_and_a_listener_of_their_own() {
    let home = Home::new("");
    let metrics_port = free_port();
    home.server_options(&format!("metrics_listen = \"127.0.0.1:{metrics_port}\""));
    let daemon = home.serve();
    assert!(
        eventually(10, || !home
            .ok(&["status"])
            .contains("crawl      last never")),
        "crawled at start"
    );
    client().get(daemon.url("/mentions.atom")).send().unwrap();
    let metrics_url = format!("http://127.0.0.1:{metrics_port}/metrics");
    let text = client().get(&metrics_url).send().unwrap().text().unwrap();
    for series in [
        "backfeed_http_request_duration_seconds_bucket{",
        "backfeed_http_requests_total{route=\"/mentions.atom\",status=\"200\"} 1",
        "backfeed_build_info{version=\"",
        "process_resident_memory_bytes ",
        "process_open_fds ",
        "process_cpu_seconds ",
        "backfeed_last_run_timestamp_seconds{schedule=\"crawl\"} ",
        // An empty store still has every status, at zero.
        "backfeed_mentions{status=\"verified\"} 0",
        "backfeed_mentions{status=\"held\"} 0",
        "backfeed_queue_depth 0",
    ] {
        assert!(text.contains(series), "{series} missing:\n{text}");
    }
    assert!(
        !text.contains("backfeed_last_run_timestamp_seconds{schedule=\"crawl\"} 0.0\n"),
        "the crawl at start is the last run: {text}"
    );
    assert_eq!(
        client()
            .get(daemon.url("/metrics"))
            .send()
            .unwrap()
            .status(),
        404,
        "with its own listener, /metrics is not on the public one"
    );
}

#[test]
fn migrate_check_says_what_is_pending_and_migrate_applies_it() {
    let home = Home::new("");
    let (code, out, err) = home.run(&["migrate", "--check"]);
    assert_eq!(
        code, 1,
        "a store not made yet has every migration pending: {out}{err}"
    );
    assert!(out.contains("pending migration 1:"), "{out}");
    assert!(err.contains("run `backfeed migrate`"), "{err}");
    let applied = home.ok(&["migrate"]);
    assert!(applied.contains("applied"), "{applied}");
    let (code, out, _) = home.run(&["migrate", "--check"]);
    assert_eq!(code, 0);
    assert!(out.contains("up to date"), "{out}");
    // Two processes starting together on a new store migrate once, and both start.
    let fresh = Home::new("");
    let runs: Vec<_> = (0..2)
        .map(|_| {
            std::process::Command::new(env!("CARGO_BIN_EXE_backfeed"))
                .args(["--config", fresh.config_path().to_str().unwrap(), "posts"])
                .output()
                .unwrap()
        })
        .collect();
    for run in runs {
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
    }
}

#[test]
fn the_store_is_a_path_or_a_database_url_never_both() {
    let home = Home::new("");
    home.store_options("url_env = \"TEST_DATABASE_URL\"");
    let (code, _, err) = home.run(&["posts"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("store.path") && err.contains("store.url_env"),
        "names both keys: {err}"
    );
    let config = std::fs::read_to_string(home.config_path()).unwrap();
    let only_url: String = config
        .lines()
        .filter(|l| !l.starts_with("path ="))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(home.config_path(), only_url).unwrap();
    let (code, _, err) = home.run_env(&["posts"], &[("TEST_DATABASE_URL", "")]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("TEST_DATABASE_URL") && err.contains("unset or empty"),
        "{err}"
    );
}

#[test]
fn a_second_serve_on_one_sqlite_store_refuses_to_start_and_names_the_first() {
    let home = Home::new("");
    home.ok(&["crawl"]);
    let _daemon = home.serve();
    home.server_options(&format!("listen = \"127.0.0.1:{}\"", free_port()));
    let (code, _, err) = home.run(&["serve"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("another backfeed process") && err.contains("(backfeed serve)"),
        "{err}"
    );
    // Commands beside a running serve keep working.
    home.ok(&["posts"]);
}

#[test]
fn init_reads_the_home_page_and_writes_a_config_that_runs() {
    let home = Home::new("");
    home.web.set(
        "/blog/",
        Fixture::html(&format!(
            r#"<html><head><title>Anna's notes</title>
            <link rel="alternate" type="application/rss+xml" href="/blog/feed.xml">
            <link rel="sitemap" href="{}">
            <link rel="me" href="https://mastodon.example/@anna"></head>
            <body><a rel="me" href="https://bsky.example/profile/anna">Bluesky</a></body></html>"#,
            home.web.url("/blog/sitemap.xml")
        )),
    );
    let out = home.dir.path().join("new").join("backfeed.toml");
    let (code, stdout, err) = home.run(&[
        "init",
        "--site",
        &home.web.url("/blog/"),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        stdout.contains("feeds 1 · sitemaps 1 · your accounts (rel=me) 2"),
        "{stdout}"
    );
    assert!(stdout.contains("<link rel=\"webmention\""), "{stdout}");
    let written = std::fs::read_to_string(&out).unwrap();
    assert!(
        written.contains(&home.web.url("/blog/feed.xml")),
        "{written}"
    );
    assert!(
        written.contains("https://mastodon.example/@anna"),
        "{written}"
    );
    assert!(written.contains("title = \"Anna's notes\""), "{written}");
    // The written file is a configuration backfeed accepts, and its store can be made.
    let migrated = std::process::Command::new(env!("CARGO_BIN_EXE_backfeed"))
        .args(["--config", out.to_str().unwrap(), "migrate"])
        .output()
        .unwrap();
    assert_eq!(
        migrated.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&migrated.stderr)
    );
    assert!(
        out.parent().unwrap().join("data/backfeed.db").exists(),
        "the store is made beside the written config"
    );
    // A second init does not overwrite it without --force.
    let (code, _, err) = home.run(&[
        "init",
        "--site",
        &home.web.url("/blog/"),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--force"), "{err}");
}

#[test]
fn status_json_gives_the_last_runs_counts_as_numbers() {
    let home = Home::new("");
    home.ok(&["crawl"]);
    let json: serde_json::Value = serde_json::from_str(&home.ok(&["status", "--json"])).unwrap();
    let crawl = json["schedules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "crawl")
        .unwrap()
        .clone();
    assert_eq!(crawl["last_counts"]["posts"], 1, "{crawl}");
    assert_eq!(crawl["last_counts"]["errors"], 0, "{crawl}");
}
