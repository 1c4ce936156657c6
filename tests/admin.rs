//! The operator's page over real HTTP, without a browser (tests/browser.rs drives it in one):
//! off without its password, every route refused without a session, the cookie's flags, CSRF
//! tokens required on every form, the throttle after wrong passwords, sign-out ending the
//! session on the server, filters and paging, and hostile strings shown as text on every page.

mod support;
use support::*;

const PASSWORD: (&str, &str) = ("TEST_ADMIN_PASSWORD", "correct horse battery staple");

/// A home in moderation mode with the admin page configured (its password in the environment
/// of `serve_env(&[PASSWORD])`).
fn admin_home() -> Home {
    let home = Home::new("");
    home.write_config(
        "[moderation]\nmode = \"queue\"\n\n[admin]\npassword_env = \"TEST_ADMIN_PASSWORD\"\n",
    );
    home.without_rate_limits();
    home.ok(&["crawl"]);
    home
}

impl Operator {
    fn sign_in(base: &str) -> Operator {
        Operator::sign_in_with(base, PASSWORD.1)
    }
}

fn held_mention(home: &Home, path: &str, words: &str) -> String {
    let source = home.linking_page(path, words);
    home.run(&["submit", &source, &home.post_url()]);
    source
}

fn status_of(home: &Home, source: &str) -> String {
    home.mentions()
        .into_iter()
        .find(|m| m["source"] == source)
        .map(|m| m["status"].as_str().unwrap().to_string())
        .unwrap_or_default()
}

#[test]
fn the_page_is_off_until_its_password_is_set() {
    let home = admin_home();
    let daemon = home.serve();
    let r = client().get(daemon.url("/admin/")).send().unwrap();
    assert_eq!(r.status(), 404);
    assert!(eventually(5, || daemon
        .log_text()
        .contains("set TEST_ADMIN_PASSWORD to a password")));
}

#[test]
fn without_a_session_every_admin_route_is_refused() {
    let home = admin_home();
    let source = held_mention(&home, "/held/a", "Held one");
    let id = home.mentions()[0]["id"].to_string();
    let daemon = home.serve_env(&[PASSWORD]);
    for page in [
        "/admin/",
        "/admin/mentions",
        "/admin/log",
        "/admin/sent",
        "/admin/blocks",
        "/admin/status",
    ] {
        let r = client().get(daemon.url(page)).send().unwrap();
        assert_eq!(r.status(), 303, "{page}");
        assert_eq!(r.headers()["location"], "/admin/login", "{page}");
    }
    let forged = [("csrf", "0".repeat(64)), ("domain", "example.com".into())];
    for action in [
        format!("/admin/mentions/{id}/approve"),
        format!("/admin/mentions/{id}/reject"),
        "/admin/blocks".into(),
        "/admin/blocks/unblock".into(),
        "/admin/logout".into(),
    ] {
        let r = client()
            .post(daemon.url(&action))
            .header("cookie", "backfeed_session=forged")
            .form(&forged)
            .send()
            .unwrap();
        assert_eq!(r.status(), 403, "{action}");
    }
    assert_eq!(status_of(&home, &source), "held");
    assert!(!home.ok(&["block", "--list"]).contains("example.com"));
}

#[test]
fn signing_in_sets_a_strict_httponly_session_cookie_secure_behind_https() {
    let home = admin_home();
    let daemon = home.serve_env(&[PASSWORD]);
    let base = daemon.base.clone();

    let wrong = try_password(&base, "wrong");
    assert_eq!(wrong.status(), 401);
    assert!(cookie_named(&set_cookies(&wrong), "backfeed_session").is_none());
    assert!(wrong.text().unwrap().contains("Wrong password."));

    // The sign-in form's own token is required too.
    let r = client()
        .post(daemon.url("/admin/login"))
        .form(&[("password", PASSWORD.1)])
        .send()
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(cookie_named(&set_cookies(&r), "backfeed_session").is_none());

    let ok = try_password(&base, PASSWORD.1);
    assert_eq!(ok.status(), 303);
    assert_eq!(ok.headers()["location"], "/admin/");
    assert_eq!(ok.headers()["cache-control"], "no-store");
    let cookie = cookie_named(&set_cookies(&ok), "backfeed_session").unwrap();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/admin", "Max-Age="] {
        assert!(cookie.contains(flag), "{flag} in {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain http: not Secure");
    assert!(daemon.log_text().contains("wrong password"));
    drop(daemon);

    // Behind https (the public URL says so) the cookie is Secure.
    let config =
        read(&home.config_path()).replace("public_url = \"http://", "public_url = \"https://");
    std::fs::write(home.config_path(), config).unwrap();
    let daemon = home.serve_env(&[PASSWORD]);
    let ok = try_password(&daemon.base, PASSWORD.1);
    let cookie = cookie_named(&set_cookies(&ok), "backfeed_session").unwrap();
    assert!(cookie.contains("; Secure"), "{cookie}");
}

#[test]
fn a_form_without_its_csrf_token_changes_nothing() {
    let home = admin_home();
    let source = held_mention(&home, "/held/b", "Held two");
    let id = home.mentions()[0]["id"].to_string();
    let daemon = home.serve_env(&[PASSWORD]);
    let op = Operator::sign_in(&daemon.base);
    let approve = format!("/admin/mentions/{id}/approve");

    assert_eq!(op.post(&approve, &[]).status(), 403, "no token");
    assert_eq!(
        op.post(&approve, &[("csrf", &"f".repeat(64))]).status(),
        403,
        "wrong token"
    );
    assert_eq!(
        op.post("/admin/blocks", &[("domain", "127.0.0.1")])
            .status(),
        403
    );
    assert_eq!(op.get(&approve).status(), 405, "no state change on GET");
    assert_eq!(status_of(&home, &source), "held");
    assert!(!daemon.text("/mentions.atom").contains("Held two"));

    let r = op.post(&approve, &[("csrf", &op.csrf), ("back", "/admin/")]);
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/admin/?done=approved");
    assert_eq!(status_of(&home, &source), "verified");
    assert!(daemon.text("/mentions.atom").contains("Held two"));
    assert!(
        op.page("/admin/?done=approved")
            .contains("Approved: the mention is published.")
    );
    // The click is in the decision log like a command's.
    assert!(
        home.log()
            .iter()
            .any(|d| d["outcome"] == "approved" && d["source"] == source)
    );
}

#[test]
fn five_wrong_passwords_in_a_minute_slow_the_next_tries() {
    let home = admin_home();
    let daemon = home.serve_env(&[PASSWORD]);
    for _ in 0..5 {
        assert_eq!(try_password(&daemon.base, "guess").status(), 401);
    }
    let slowed = try_password(&daemon.base, PASSWORD.1);
    assert_eq!(slowed.status(), 429, "even the right password waits");
    let wait: u64 = slowed.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&wait), "{wait}");
    assert!(slowed.text().unwrap().contains("Too many wrong passwords"));
    std::thread::sleep(std::time::Duration::from_secs(wait));
    assert_eq!(try_password(&daemon.base, PASSWORD.1).status(), 303);
}

#[test]
fn signing_out_ends_the_session_on_the_server() {
    let home = admin_home();
    let daemon = home.serve_env(&[PASSWORD]);
    let op = Operator::sign_in(&daemon.base);
    let r = op.post("/admin/logout", &[("csrf", &op.csrf)]);
    assert_eq!(r.status(), 303);
    assert!(
        cookie_named(&set_cookies(&r), "backfeed_session")
            .unwrap()
            .contains("Max-Age=0")
    );
    // The old cookie, replayed, is worth nothing.
    assert_eq!(op.get("/admin/").status(), 303);
    assert_eq!(
        op.post(
            "/admin/blocks",
            &[("csrf", &op.csrf), ("domain", "a.example")]
        )
        .status(),
        403
    );
}

#[test]
fn mentions_filter_by_status_type_kind_post_and_text_and_page() {
    let home = admin_home();
    for i in 0..3 {
        held_mention(&home, &format!("/many/{i}"), &format!("Entry number {i}"));
    }
    let daemon = home.serve_env(&[PASSWORD]);
    let op = Operator::sign_in(&daemon.base);
    let cards = |html: &str| html.matches("<tr class=\"mention\"").count();
    assert_eq!(cards(&op.page("/admin/mentions")), 3);
    assert_eq!(
        cards(&op.page("/admin/mentions?status=held&kind=webmention")),
        3
    );
    assert_eq!(cards(&op.page("/admin/mentions?status=verified")), 0);
    assert_eq!(cards(&op.page("/admin/mentions?type=like")), 0);
    assert_eq!(cards(&op.page("/admin/mentions?q=number+1")), 1);
    let post = home.post_url();
    let by_post = serde_urlencoded::to_string([("post", post.as_str())]).unwrap();
    assert_eq!(cards(&op.page(&format!("/admin/mentions?{by_post}"))), 3);
    assert_eq!(
        cards(&op.page("/admin/mentions?post=https%3A%2F%2Felsewhere.example%2F")),
        0
    );
    let bad = op.get("/admin/mentions?status=bogus");
    assert_eq!(bad.status(), 400);
    assert!(bad.text().unwrap().contains("unknown status"));
    // The queue shows all three, oldest first, each row with its three buttons, and the
    // bulk buttons above them once.
    let queue = op.page("/admin/");
    assert_eq!(cards(&queue), 3);
    for (label, count) in [(">Approve<", 4), (">Reject<", 4), (">Block<", 3)] {
        assert_eq!(queue.matches(label).count(), count, "{label}");
    }
    assert_eq!(queue.matches(">Block their domains<").count(), 1);
    assert!(!queue.contains("(untitled)"));
    assert!(queue.find("Entry number 0").unwrap() < queue.find("Entry number 2").unwrap());
    // The log filters too.
    assert_eq!(
        op.page("/admin/log?outcome=verified")
            .matches("/many/")
            .count(),
        3
    );
    assert!(!op.page("/admin/log?outcome=refused").contains("/many/"));

    // Paging: 50 a page, the filters kept in the links between pages.
    let db = home.sql();
    for i in 0..52 {
        db.execute(
            "INSERT INTO mentions (source, target, target_key, kind, status, title, first_seen, updated_at, status_token)
             VALUES (?1, ?2, ?3, 'pingback', 'rejected', ?4, '2020-01-01T00:00:00Z', '2020-01-01T00:00:00Z', ?5)",
            &[
                &format!("https://old.example/{i}"),
                &post,
                &format!("old-{i}"),
                &format!("Old pingback {i}"),
                &format!("token-{i}"),
            ],
        );
    }
    let first = op.page("/admin/mentions?kind=pingback");
    assert_eq!(cards(&first), 50);
    assert!(
        first.contains(r#"<a rel="next" href="/admin/mentions?kind=pingback&amp;page=2">"#),
        "{first}"
    );
    assert!(!first.contains(r#"rel="prev""#));
    let second = op.page("/admin/mentions?kind=pingback&page=2");
    assert_eq!(cards(&second), 2);
    assert!(second.contains(r#"<a rel="prev" href="/admin/mentions?kind=pingback&amp;page=1">"#));
    assert!(!second.contains(r#"rel="next""#));
}

#[test]
fn blocking_and_unblocking_from_the_page_changes_the_feed() {
    let home = admin_home();
    held_mention(&home, "/blockme/1", "From a host to block");
    let id = home.mentions()[0]["id"].to_string();
    let waiting = held_mention(&home, "/blockme/2", "Still waiting for approval");
    let daemon = home.serve_env(&[PASSWORD]);
    let op = Operator::sign_in(&daemon.base);
    op.post(
        &format!("/admin/mentions/{id}/approve"),
        &[("csrf", &op.csrf)],
    );
    assert!(
        daemon
            .text("/mentions.atom")
            .contains("From a host to block")
    );

    let r = op.post(
        "/admin/blocks",
        &[
            ("csrf", &op.csrf),
            ("domain", "http://127.0.0.1/"),
            ("back", "/admin/blocks"),
        ],
    );
    assert_eq!(r.headers()["location"], "/admin/blocks?done=blocked");
    assert!(
        !daemon
            .text("/mentions.atom")
            .contains("From a host to block")
    );
    let page = op.page("/admin/blocks");
    assert!(page.contains("<span class=\"domain\">127.0.0.1</span>"));
    assert!(page.contains(">Unblock<"));
    let r = op.post(
        "/admin/blocks",
        &[
            ("csrf", &op.csrf),
            ("domain", "not a domain"),
            ("back", "/admin/blocks"),
        ],
    );
    assert_eq!(r.headers()["location"], "/admin/blocks?done=bad_domain");

    op.post(
        "/admin/blocks/unblock",
        &[("csrf", &op.csrf), ("domain", "127.0.0.1")],
    );
    assert!(
        daemon
            .text("/mentions.atom")
            .contains("From a host to block")
    );
    assert!(!op.page("/admin/blocks").contains(">Unblock<"));
    // A held mention the block hid comes back held: unblocking is not approving.
    assert_eq!(status_of(&home, &waiting), "held");
    assert!(!daemon.text("/mentions.atom").contains("Still waiting"));
}

#[test]
fn hostile_titles_and_names_are_text_on_every_page() {
    let home = admin_home();
    let hostile = format!(
        r#"<html><head><title>&lt;script&gt;alert(1)&lt;/script&gt;</title></head><body>
        <article class="h-entry"><h1 class="p-name">&lt;script&gt;alert('title')&lt;/script&gt;</h1>
        <a class="p-author h-card" href="https://evil.example/">&lt;img src=x onerror=alert(2)&gt;</a>
        <div class="e-content"><p>&lt;iframe src=//evil.example&gt; see <a href="{}">this</a></p></div>
        </article></body></html>"#,
        home.post_url()
    );
    let source = home.source("/hostile/1", &hostile);
    home.run(&["submit", &source, &home.post_url()]);
    assert_eq!(status_of(&home, &source), "held");
    let daemon = home.serve_env(&[PASSWORD]);
    let op = Operator::sign_in(&daemon.base);
    for page in [
        "/admin/",
        "/admin/mentions",
        "/admin/mentions?q=script",
        "/admin/log",
        "/admin/sent",
        "/admin/blocks",
        "/admin/status",
    ] {
        let html = op.page(page);
        for raw in ["<script", "<img", "<iframe"] {
            assert!(!html.contains(raw), "{raw} raw on {page}");
        }
    }
    let status = op.page("/admin/status");
    assert!(
        status.contains("Processes serving this store")
            && status.contains(&format!("{}:", backfeed::store::hostname())),
        "the serving process is listed (default name hostname:pid)"
    );
    let queue = op.page("/admin/");
    assert!(
        queue.contains("&lt;script&gt;alert('title')&lt;/script&gt;"),
        "title shown as text"
    );
    assert!(
        queue.contains("&lt;img src=x onerror=alert(2)&gt;"),
        "name shown as text"
    );
    assert!(queue.contains("&lt;iframe"), "excerpt shown as text");
}

#[test]
fn links_the_page_shows_are_http_only_whatever_the_store_holds() {
    let home = admin_home();
    let source = held_mention(&home, "/held/1", "A held one");
    // An older store, or a hand edit, holding script URLs where links go.
    let db = home.sql();
    db.execute(
        "UPDATE mentions SET author_name = 'Mallory', author_url = 'javascript:alert(1)'",
        &[],
    );
    db.execute(
        "UPDATE mentions SET source = 'javascript:alert(2)' WHERE source = ?1",
        &[&source],
    );
    let daemon = home.serve_env(&[PASSWORD]);
    let op = Operator::sign_in(&daemon.base);
    for page in ["/admin/", "/admin/mentions"] {
        let html = op.page(page);
        assert!(html.contains("Mallory"), "{page}");
        assert!(
            !html.to_ascii_lowercase().contains("href=\"javascript:"),
            "{page}: {html}"
        );
    }
}

#[test]
fn someone_guessing_from_another_address_does_not_lock_the_operator_out() {
    let home = admin_home();
    let daemon = home.serve_env(&[PASSWORD]);
    let guesser = client_builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    let answers: Vec<u16> = (0..12)
        .map(|_| {
            try_password_from(&guesser, &daemon.base, "guess")
                .status()
                .as_u16()
        })
        .collect();
    assert_eq!(&answers[..5], &[401; 5], "{answers:?}");
    assert!(
        answers[5..].iter().all(|s| *s == 429),
        "then the guesser waits: {answers:?}"
    );
    assert_eq!(
        try_password(&daemon.base, PASSWORD.1).status(),
        303,
        "the operator, from another address, signs in at once"
    );
}

#[test]
fn bulk_actions_approve_reject_and_block_what_is_ticked() {
    let home = admin_home();
    for i in 0..3 {
        held_mention(&home, &format!("/bulk/{i}"), &format!("Bulk entry {i}"));
    }
    let daemon = home.serve_env(&[PASSWORD]);
    let op = Operator::sign_in(&daemon.base);
    let ids: Vec<String> = home
        .mentions()
        .iter()
        .map(|m| m["id"].to_string())
        .collect();
    let post = |extra: &[(&str, &str)]| {
        let mut fields = vec![("csrf", op.csrf.as_str()), ("back", "/admin/")];
        fields.extend_from_slice(extra);
        op.post("/admin/bulk", &fields)
    };
    // Two ticked, approved at once.
    let r = post(&[("id", &ids[0]), ("id", &ids[1]), ("action", "approve")]);
    assert_eq!(r.status(), 303);
    let status = |id: &str| {
        home.mentions()
            .into_iter()
            .find(|m| m["id"].to_string().as_str() == id)
            .map(|m| m["status"].clone())
            .unwrap()
    };
    assert_eq!(status(&ids[0]), "verified");
    assert_eq!(status(&ids[1]), "verified");
    assert_eq!(status(&ids[2]), "held");
    // Nothing ticked: nothing happens, and the page says so.
    let r = post(&[("action", "reject")]);
    assert!(
        r.headers()["location"]
            .to_str()
            .unwrap()
            .contains("none_selected")
    );
    // Without the form's token, nothing happens at all.
    let forged = op.post("/admin/bulk", &[("id", &ids[2]), ("action", "reject")]);
    assert_ne!(forged.status(), 303);
    assert_eq!(status(&ids[2]), "held");
    // Block their domains: the ticked mention's host is blocked, and it is hidden.
    post(&[("id", &ids[2]), ("action", "block")]);
    assert!(home.ok(&["block", "--list"]).contains("127.0.0.1"));
    assert_eq!(status(&ids[2]), "rejected");
    // The table names the post by its title.
    let page = op.page("/admin/mentions");
    assert!(page.contains(">Hello, world<"), "{page}");
}

/// Sessions live in the store: the next process (after a restart, or another behind a load
/// balancer) knows the operator's session and its CSRF token; signing out ends it for all.
#[test]
fn a_session_outlives_its_process_and_sign_out_ends_it_everywhere() {
    let home = Home::new(&format!("[admin]\npassword_env = \"{}\"\n", PASSWORD.0));
    let first = home.serve_env(&[PASSWORD]);
    let op = Operator::sign_in(&first.base);
    assert_eq!(first.terminate(), 0);
    let second = home.serve_env(&[PASSWORD]);
    let queue = op.page("/admin/");
    assert!(
        queue.contains("/admin/logout"),
        "still signed in on the next process"
    );
    assert_eq!(csrf_of(&queue), op.csrf, "with the same CSRF token");
    let r = op.post("/admin/logout", &[("csrf", &op.csrf)]);
    assert_eq!(r.status(), 303);
    assert_ne!(op.get("/admin/").status(), 200, "signed out");
    drop(second);
}
