//! Many sites in one daemon, through the binary and HTTP as their users see it: two sites on
//! two fixture hosts (one named by IP, one by `localhost`, so webmention.io's `domain` tells
//! them apart), each ping landing on its own site's feeds, API, export, CLI listings, webhooks
//! and mail and never on the other's; a site added to `[sites] dir` served after SIGHUP without
//! a restart; a site owner's session that cannot see or change the other site's mentions
//! however the URL or the form is edited; an old single-site store filed under its one site with
//! every id and URL it published kept; and `forget-site` deleting a removed site's data.

mod support;
use support::*;

/// Two sites: `anna` on the home's fixture web (`/blog/`), `bob` on a second fixture web named
/// `localhost` (`/b/`). `extra_anna` / `extra_bob` are TOML lines inside each site's table.
struct TwoSites {
    home: Home,
    bob_web: FixtureWeb,
}

const ANNA_PASSWORD: (&str, &str) = ("ANNA_ADMIN_PASSWORD", "anna's own secret");
const HOST_PASSWORD: (&str, &str) = ("HOST_ADMIN_PASSWORD", "the host's secret");

impl TwoSites {
    fn new(extra_anna: &str, extra_bob: &str, extra: &str) -> TwoSites {
        let home = Home::new("");
        let bob_web = FixtureWeb::start();
        let sites = TwoSites { home, bob_web };
        sites.bob_web.set(
            "/b/feed.xml",
            Fixture::with_type(
                "application/rss+xml",
                format!(
                    "<rss version=\"2.0\"><channel><title>Bob</title><item><title>Bob's post</title><link>{}</link></item></channel></rss>",
                    sites.bob_post()
                )
                .as_bytes(),
            ),
        );
        sites.bob_web.set(
            "/b/post/",
            Fixture::html(&format!(
                "<title>Bob's post</title><article class=\"h-entry\"><div class=\"e-content\">Bob writes, \
                 and links to <a href=\"{}\">a page</a>.</div></article>",
                sites.bob_web.url("/bob-links-here")
            )),
        );
        sites.write_config(extra_anna, extra_bob, extra);
        sites.home.without_rate_limits();
        sites
    }

    fn write_config(&self, extra_anna: &str, extra_bob: &str, extra: &str) {
        let web = &self.home.web;
        let config = format!(
            r#"
[[site]]
name = "anna"
base_url = "{anna_base}"
feeds = ["{anna_feed}"]
title = "Anna's notes"
{extra_anna}

[[site]]
name = "bob"
base_url = "{bob_base}"
feeds = ["{bob_feed}"]
title = "Bobs blog"
{extra_bob}
{server}
[fetch]
allow_private_addresses = true
timeout_secs = 2
per_host_per_minute = 0
{extra}
"#,
            anna_base = web.url("/blog/"),
            anna_feed = web.url("/blog/feed.xml"),
            bob_base = self.bob_url("/b/"),
            bob_feed = self.bob_url("/b/feed.xml"),
            server = self.home.store_and_server(),
        );
        std::fs::write(self.home.config_path(), config).unwrap();
    }

    /// Bob's fixture web, named `localhost` (a host of its own for `domain=`).
    fn bob_url(&self, path: &str) -> String {
        self.bob_web.url(path).replace("127.0.0.1", "localhost")
    }

    fn bob_post(&self) -> String {
        self.bob_url("/b/post/")
    }

    /// A source page (on anna's web) linking to `target`.
    fn source_linking(&self, path: &str, target: &str, words: &str) -> String {
        self.home.source(
            path,
            &format!("<title>{words}</title><p>{words}: <a href=\"{target}\">this</a></p>"),
        )
    }
}

/// POSTs a webmention to the daemon; returns the HTTP status.
fn webmention(daemon: &Daemon, source: &str, target: &str) -> u16 {
    client()
        .post(daemon.url("/webmention"))
        .form(&[("source", source), ("target", target)])
        .send()
        .unwrap()
        .status()
        .as_u16()
}

/// The status `mentions --json` gives the mention from `source` ("" while there is none).
fn status_of(home: &Home, source: &str) -> String {
    home.mentions()
        .iter()
        .find(|m| m["source"] == source)
        .map(|m| m["status"].as_str().unwrap_or("").to_string())
        .unwrap_or_default()
}

fn get(daemon: &Daemon, path: &str) -> (u16, String) {
    let r = client().get(daemon.url(path)).send().unwrap();
    (r.status().as_u16(), r.text().unwrap())
}

#[test]
fn each_sites_ping_lands_on_its_own_feeds_api_export_cli_and_webhooks_only() {
    let sites = TwoSites::new(
        "[[site.webhook]]\nurl = \"HOOK_A\"\nformat = \"jf2\"\n[site.email]\nto = [\"anna@anna.example\"]",
        "[[site.webhook]]\nurl = \"HOOK_B\"\nformat = \"jf2\"\n[site.email]\nto = [\"bob@bob.example\"]",
        "[notify.email]\nsmtp_url_env = \"TEST_SMTP_URL\"\nfrom = \"backfeed@host.example\"\nto = [\"host@host.example\"]",
    );
    let home = &sites.home;
    let config = std::fs::read_to_string(home.config_path())
        .unwrap()
        .replace("HOOK_A", &home.web.url("/hooks/anna"))
        .replace("HOOK_B", &sites.bob_url("/hooks/bob"));
    std::fs::write(home.config_path(), config).unwrap();
    home.web.set("/hooks/anna", Fixture::status(200));
    sites.bob_web.set("/hooks/bob", Fixture::status(200));
    home.ok(&["crawl"]);
    let smtp = Smtp::start(home).expect("aiosmtpd is installed (.ci/run installs it)");

    let daemon = home.serve_env(&[("TEST_SMTP_URL", &smtp.url())]);
    let to_anna = sites.source_linking("/src/for-anna", &home.post_url(), "Anna fan");
    let to_bob = sites.source_linking("/src/for-bob", &sites.bob_post(), "Bob fan");
    assert_eq!(webmention(&daemon, &to_anna, &home.post_url()), 201);
    assert_eq!(webmention(&daemon, &to_bob, &sites.bob_post()), 201);
    // A target under neither site is refused as before.
    let elsewhere = home.web.url("/not-a-site/post");
    let refused = client()
        .post(daemon.url("/webmention"))
        .form(&[("source", to_anna.as_str()), ("target", elsewhere.as_str())])
        .send()
        .unwrap();
    assert_eq!(refused.status(), 400);
    let reason = refused.text().unwrap();
    assert!(
        reason.contains("not under any site served here"),
        "{reason}"
    );
    assert!(
        !reason.contains(&sites.bob_url("/b/")),
        "the other sites are not listed to a stranger"
    );
    assert!(eventually(20, || status_of(home, &to_anna) == "verified"
        && status_of(home, &to_bob) == "verified"));

    // Feeds: each site's own; without a site, both.
    for (path, has, lacks) in [
        ("/mentions.atom?site=anna", &to_anna, &to_bob),
        ("/mentions.atom?site=bob", &to_bob, &to_anna),
        ("/mentions.json?site=bob", &to_bob, &to_anna),
        ("/api/mentions.jf2?site=anna", &to_anna, &to_bob),
        ("/api/mentions.jf2?domain=localhost", &to_bob, &to_anna),
        ("/api/mentions.jf2?domain=127.0.0.1", &to_anna, &to_bob),
    ] {
        let (status, body) = get(&daemon, path);
        assert_eq!(status, 200, "{path}");
        assert!(body.contains(has.as_str()), "{path} lacks its own: {body}");
        assert!(
            !body.contains(lacks.as_str()),
            "{path} shows the other site's: {body}"
        );
    }
    let (_, both) = get(&daemon, "/mentions.atom");
    assert!(both.contains(&to_anna) && both.contains(&to_bob));
    // A site's feed is titled as that site.
    assert!(
        get(&daemon, "/mentions.atom?site=bob")
            .1
            .contains("Bobs blog")
    );
    // Counts: the post of another site than the one named has none.
    let anna_post = home.post_url();
    let count = |site: &str| -> serde_json::Value {
        let (_, body) = get(
            &daemon,
            &format!("/api/count.json?target={anna_post}&site={site}"),
        );
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["count"].clone()
    };
    assert_eq!(count("bob"), 0);
    assert_eq!(count("anna"), 1);
    assert_eq!(get(&daemon, "/mentions.atom?site=carol").0, 404);

    // Webhooks: each site's hook heard of its own mention only.
    assert!(eventually(20, || home.web.hits("/hooks/anna") >= 1
        && sites.bob_web.hits("/hooks/bob") >= 1));
    let bodies = |web: &FixtureWeb, path: &str| -> Vec<String> {
        web.seen(path)
            .iter()
            .map(|s| String::from_utf8_lossy(&s.body).into_owned())
            .collect()
    };
    for body in bodies(&home.web, "/hooks/anna") {
        assert!(body.contains(&to_anna) && !body.contains(&to_bob), "{body}");
    }
    for body in bodies(&sites.bob_web, "/hooks/bob") {
        assert!(body.contains(&to_bob) && !body.contains(&to_anna), "{body}");
    }
    // Mail: each site's recipients hear of their own site's mention; the host's of both.
    assert!(
        eventually(20, || smtp.mails().len() >= 4),
        "{:?}",
        smtp.mails()
    );
    let mails = smtp.mails();
    let to = |who: &str| -> Vec<&String> {
        mails
            .iter()
            .filter(|m| m.lines().any(|l| l.starts_with("To:") && l.contains(who)))
            .collect()
    };
    assert_eq!(to("anna@anna.example").len(), 1, "{mails:?}");
    assert!(to("anna@anna.example")[0].contains("Anna fan"));
    assert!(!to("anna@anna.example")[0].contains("Bob fan"));
    assert_eq!(to("bob@bob.example").len(), 1, "{mails:?}");
    assert!(to("bob@bob.example")[0].contains("Bob fan"));
    assert!(
        to("bob@bob.example")[0].contains("Bobs blog"),
        "the site's own title"
    );
    assert_eq!(to("host@host.example").len(), 2);

    // A site's feeds keep their ETag (a 304 for its build) while another site changes.
    let etag = |path: &str| -> String {
        let r = client().get(daemon.url(path)).send().unwrap();
        r.headers()["etag"].to_str().unwrap().to_string()
    };
    let (anna_tag, bob_tag) = (
        etag("/mentions.atom?site=anna"),
        etag("/mentions.atom?site=bob"),
    );
    let all_tag = etag("/mentions.atom");
    let again = sites.source_linking("/src/bob-again", &sites.bob_post(), "Bob again");
    assert_eq!(webmention(&daemon, &again, &sites.bob_post()), 201);
    assert!(eventually(20, || status_of(home, &again) == "verified"));
    assert_eq!(
        etag("/mentions.atom?site=anna"),
        anna_tag,
        "anna's feed did not change"
    );
    let revalidated = client()
        .get(daemon.url("/mentions.atom?site=anna"))
        .header("if-none-match", &anna_tag)
        .send()
        .unwrap();
    assert_eq!(revalidated.status(), 304);
    assert_ne!(etag("/mentions.atom?site=bob"), bob_tag, "bob's did");
    assert_ne!(
        etag("/mentions.atom"),
        all_tag,
        "and so did the all-sites feed"
    );
    assert!(get(&daemon, "/mentions.atom?site=bob").1.contains(&again));
    drop(daemon);

    // The CLI's listings and the export, by site.
    let listed = home.ok(&["mentions", "--site", "bob", "--json"]);
    assert!(
        listed.contains(&to_bob) && !listed.contains(&to_anna),
        "{listed}"
    );
    let posts = home.ok(&["posts", "--site", "anna", "--json"]);
    assert!(
        posts.contains(&anna_post) && !posts.contains(&sites.bob_post()),
        "{posts}"
    );
    let log = home.ok(&["log", "--site", "bob", "--since", "1h", "--json"]);
    assert!(log.contains(&to_bob) && !log.contains(&to_anna), "{log}");
    let out = home.dir.path().join("bob-site");
    home.ok(&["export", "--site", "bob", "--out", out.to_str().unwrap()]);
    let index = std::fs::read_to_string(out.join("index.json")).unwrap();
    assert!(
        index.contains(&sites.bob_post()) && !index.contains(&anna_post),
        "{index}"
    );
    let feed = std::fs::read_to_string(out.join("mentions.atom")).unwrap();
    assert!(feed.contains(&to_bob) && !feed.contains(&to_anna));
    let (code, _, err) = home.run(&["mentions", "--site", "carol"]);
    assert_eq!(code, 2, "an unknown site is a usage error");
    assert!(err.contains("anna, bob"), "{err}");
}

#[test]
fn a_site_added_to_the_sites_dir_is_served_after_sighup_without_a_restart() {
    let sites = TwoSites::new("", "admin_password_env = \"BOB_ADMIN_PASSWORD\"", "");
    let home = &sites.home;
    // Only anna in the main file; bob comes as a file of [sites] dir later.
    let config = std::fs::read_to_string(home.config_path()).unwrap();
    let bob_at = config.find("[[site]]\nname = \"bob\"").unwrap();
    let store_at = config.find("[store]").unwrap();
    let bob_table = config[bob_at..store_at].replace("[[site]]\n", "");
    let dir = home.dir.path().join("sites.d");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        home.config_path(),
        format!(
            "{}[sites]\ndir = \"{}\"\n\n{}",
            &config[..bob_at],
            dir.display(),
            &config[store_at..]
        ),
    )
    .unwrap();
    home.ok(&["crawl"]);
    let daemon = home.serve_env(&[("BOB_ADMIN_PASSWORD", "bob's secret")]);
    let to_bob = sites.source_linking("/src/for-bob", &sites.bob_post(), "Bob fan");
    assert_eq!(webmention(&daemon, &to_bob, &sites.bob_post()), 400);

    std::fs::write(dir.join("bob.toml"), &bob_table).unwrap();
    std::process::Command::new("kill")
        .args(["-HUP", &daemon.child.id().to_string()])
        .status()
        .unwrap();
    assert!(
        eventually(10, || webmention(&daemon, &to_bob, &sites.bob_post())
            == 201),
        "bob's ping is taken after SIGHUP: {}",
        daemon.log_text()
    );
    assert!(eventually(20, || status_of(home, &to_bob) == "verified"));
    assert!(get(&daemon, "/mentions.atom?site=bob").1.contains(&to_bob));
    assert!(daemon.log_text().contains("sites changed"));
    // The new site's owner signs in with the password the file names.
    let bob = Operator::sign_in_with(&daemon.base, "bob's secret");
    assert!(bob.page("/admin/mentions").contains(&to_bob));

    // Removed again: bob is no longer served, and his data stays until forgotten.
    std::fs::remove_file(dir.join("bob.toml")).unwrap();
    std::process::Command::new("kill")
        .args(["-HUP", &daemon.child.id().to_string()])
        .status()
        .unwrap();
    assert!(eventually(10, || get(&daemon, "/mentions.atom?site=bob").0 == 404));
    assert_ne!(
        bob.get("/admin/mentions").status(),
        200,
        "the owner of a removed site is signed out with it"
    );
    assert!(
        !get(&daemon, "/mentions.atom").1.contains(&to_bob),
        "a removed site is not published in the all-sites feed either"
    );
    assert!(!get(&daemon, "/api/mentions.jf2").1.contains(&to_bob));
    drop(daemon);
    assert!(home.ok(&["mentions", "--json"]).contains(&to_bob));
    let (code, _, err) = home.run(&["forget-site", "bob"]);
    assert_eq!(code, 2, "forget-site wants --yes: {err}");
    let said = home.ok(&["forget-site", "bob", "--yes"]);
    assert!(said.contains("1 mentions"), "{said}");
    assert!(!home.ok(&["mentions", "--json"]).contains(&to_bob));
    let (code, _, err) = home.run(&["forget-site", "anna", "--yes"]);
    assert_eq!(code, 2, "a configured site is not forgotten: {err}");
}

#[test]
fn a_site_owner_sees_and_changes_only_their_own_site_whatever_the_url_says() {
    let sites = TwoSites::new(
        "moderation = \"queue\"\nadmin_password_env = \"ANNA_ADMIN_PASSWORD\"",
        "moderation = \"queue\"",
        "[admin]\npassword_env = \"HOST_ADMIN_PASSWORD\"",
    );
    let home = &sites.home;
    home.ok(&["crawl"]);
    let to_anna = sites.source_linking("/src/for-anna", &home.post_url(), "Anna fan");
    let to_bob = sites.source_linking("/src/for-bob", &sites.bob_post(), "Bob fan");
    home.ok(&["submit", &to_anna, &home.post_url()]);
    home.ok(&["submit", &to_bob, &sites.bob_post()]);
    assert_eq!(status_of(home, &to_anna), "held");
    assert_eq!(status_of(home, &to_bob), "held");
    let id_of = |source: &str| {
        home.mentions()
            .iter()
            .find(|m| m["source"] == source)
            .unwrap()["id"]
            .to_string()
    };
    let (anna_id, bob_id) = (id_of(&to_anna), id_of(&to_bob));
    // Bob's post pinged what it links to: a send of bob's site, on the sent page.
    sites
        .bob_web
        .set("/bob-links-here", Fixture::html("<p>No endpoint here.</p>"));
    home.ok(&["send", &sites.bob_post()]);
    let bobs_send = sites.bob_web.url("/bob-links-here");
    assert!(home.ok(&["sent", "--json"]).contains(&bobs_send));
    let daemon = home.serve_env(&[ANNA_PASSWORD, HOST_PASSWORD]);
    let anna = Operator::sign_in_with(&daemon.base, ANNA_PASSWORD.1);

    // Every listing shows anna's alone, whatever site the URL asks for.
    for path in [
        "/admin/",
        "/admin/mentions",
        "/admin/mentions?site=bob",
        "/admin/mentions?status=held&site=bob",
        "/admin/log",
        "/admin/log?site=bob",
        "/admin/sent?site=bob",
    ] {
        let page = anna.page(path);
        assert!(
            !page.contains(&to_bob),
            "{path} shows bob's mention to anna"
        );
        assert!(
            !page.contains(&bobs_send),
            "{path} shows bob's send to anna"
        );
        if !path.starts_with("/admin/sent") {
            assert!(page.contains(&to_anna), "{path} hides anna's own");
        }
    }
    // Host-wide pages and actions are refused.
    assert_eq!(anna.get("/admin/status").status(), 403);
    assert_eq!(anna.get("/admin/blocks").status(), 403);
    let csrf = anna.csrf.clone();
    for (path, fields) in [
        (
            "/admin/blocks",
            vec![("csrf", csrf.as_str()), ("domain", "spam.example")],
        ),
        (
            "/admin/blocks/unblock",
            vec![("csrf", csrf.as_str()), ("domain", "spam.example")],
        ),
        (
            "/admin/bulk",
            vec![("csrf", csrf.as_str()), ("block_domain", "127.0.0.1")],
        ),
        (
            "/admin/bulk",
            vec![
                ("csrf", csrf.as_str()),
                ("id", anna_id.as_str()),
                ("action", "block"),
            ],
        ),
    ] {
        assert_eq!(anna.post(path, &fields).status(), 403, "{path} {fields:?}");
    }
    // Bob's mention, named by id in a URL or a form, is as if it did not exist.
    for action in ["approve", "reject"] {
        anna.post(
            &format!("/admin/mentions/{bob_id}/{action}"),
            &[("csrf", csrf.as_str()), ("back", "/admin/")],
        );
        anna.post(
            "/admin/bulk",
            &[
                ("csrf", csrf.as_str()),
                ("id", bob_id.as_str()),
                ("action", action),
            ],
        );
    }
    assert_eq!(
        status_of(home, &to_bob),
        "held",
        "anna changed bob's mention"
    );
    // Her own she moderates.
    anna.post(
        &format!("/admin/mentions/{anna_id}/approve"),
        &[("csrf", csrf.as_str()), ("back", "/admin/")],
    );
    assert_eq!(status_of(home, &to_anna), "verified");

    // The host's operator sees every site, and filters by one.
    let host = Operator::sign_in_with(&daemon.base, HOST_PASSWORD.1);
    let all = host.page("/admin/mentions");
    assert!(all.contains(&to_anna) && all.contains(&to_bob));
    assert!(host.page("/admin/sent").contains(&bobs_send));
    assert!(!host.page("/admin/sent?site=anna").contains(&bobs_send));
    let only_bob = host.page("/admin/mentions?site=bob");
    assert!(only_bob.contains(&to_bob) && !only_bob.contains(&to_anna));
    let status = host.page("/admin/status");
    assert!(
        status.contains("Sites") && status.contains("bob"),
        "per-site counts"
    );
}

#[test]
fn an_old_single_site_store_is_filed_under_its_host_and_keeps_its_ids_and_urls() {
    let home = Home::new("");
    home.ok(&["crawl"]);
    let source = home.linking_page("/src/old", "An old friend");
    home.ok(&["submit", &source, &home.post_url()]);
    let daemon = home.serve();
    let (_, feed_before) = get(&daemon, "/mentions.atom");
    let (_, api_before) = get(&daemon, "/api/mentions.jf2");
    drop(daemon);
    // As a store from before sites: nothing filed.
    let sql = home.sql();
    for table in ["posts", "mentions", "decisions"] {
        sql.execute(&format!("UPDATE {table} SET site = ''"), &[]);
    }
    drop(sql);

    let daemon = home.serve();
    let (_, feed_after) = get(&daemon, "/mentions.atom");
    let ids = |feed: &str| -> Vec<String> {
        feed.split("<id>")
            .skip(1)
            .map(|s| s.split("</id>").next().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&feed_before), ids(&feed_after), "feed ids kept");
    assert_eq!(
        api_before,
        get(&daemon, "/api/mentions.jf2").1,
        "the API unchanged"
    );
    // Named after its base_url's host: 127.0.0.1.
    let (status, own) = get(&daemon, "/mentions.atom?site=127.0.0.1");
    assert_eq!(status, 200);
    assert!(own.contains(&source));
    drop(daemon);
    assert!(
        home.ok(&["mentions", "--site", "127.0.0.1", "--json"])
            .contains(&source)
    );
}
