//! Notifications through the real binary: webhooks to a receiver on loopback (webmention.io's
//! body field by field, the signature, a retry after a 500, no second delivery after a success,
//! deletion notices, held mentions silent until approved, a crash between publish and delivery),
//! and mail to a real SMTP server (Python's aiosmtpd, installed by .ci/run).

mod support;
use support::*;

const SECRET: (&str, &str) = ("TEST_HOOK_SECRET", "s3cret-for-tests");

fn hook_home(extra: &str) -> Home {
    let home = Home::new("");
    home.write_config(&format!(
        "{extra}\n[[notify.webhook]]\nurl = \"{}\"\nsecret_env = \"TEST_HOOK_SECRET\"\n",
        home.web.url("/hook")
    ));
    home.ok(&["crawl"]);
    home
}

fn hooks(home: &Home) -> Vec<Seen> {
    home.web
        .seen("/hook")
        .into_iter()
        .filter(|s| s.method == "POST")
        .collect()
}

fn notify(home: &Home) -> String {
    let (code, out, err) = home.run_env(&["notify"], &[SECRET]);
    assert_eq!(code, 0, "{err}");
    out
}

/// Makes every waiting delivery due now (instead of waiting out its backoff).
fn due_now(home: &Home) {
    home.sql().execute(
        "UPDATE jobs SET next_try = '2000-01-01T00:00:00Z' WHERE kind = 'deliver'",
        &[],
    );
}

#[test]
fn webhooks_carry_webmention_ios_body_signed_retry_and_never_repeat() {
    let home = hook_home("");
    home.web
        .set_sequence("/hook", vec![Fixture::status(500), Fixture::status(200)]);
    let source = home.source(
        "/reply/1",
        &format!(
            "<div class=\"h-entry\"><a class=\"u-in-reply-to\" href=\"{}\">re</a>\
             <a class=\"p-author h-card\" href=\"/\">Alice</a><p class=\"e-content\">Nice post!</p></div>",
            home.post_url()
        ),
    );
    home.ok(&["submit", &source, &home.post_url()]);
    // The first try meets a 500: kept, with its error, for a later try — and `notify` says
    // what waits, until when, and why.
    let out = notify(&home);
    assert!(out.contains("failed 1"), "{out}");
    assert!(
        out.contains("waiting: webhook 127.0.0.1")
            && out.contains("next try 20")
            && out.contains("answered 500"),
        "{out}"
    );
    let status = home.ok(&["status"]);
    assert!(
        status.contains("1 pending") && status.contains("answered 500"),
        "{status}"
    );
    due_now(&home);
    assert!(notify(&home).contains("delivered 1"));
    let got = hooks(&home);
    assert_eq!(got.len(), 2);
    // One delivery id for the event, the same on its retry.
    let delivery = |s: &Seen| {
        s.headers["x-backfeed-delivery"]
            .to_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(delivery(&got[0]), delivery(&got[1]));
    let body: serde_json::Value = serde_json::from_slice(&got[1].body).unwrap();
    assert_eq!(body["secret"], SECRET.1);
    assert_eq!(body["source"], source.as_str());
    assert_eq!(body["target"], home.post_url().as_str());
    assert!(body.get("deleted").is_none());
    let post = &body["post"];
    assert_eq!(post["type"], "entry");
    assert_eq!(post["wm-property"], "in-reply-to");
    assert_eq!(post["wm-source"], source.as_str());
    assert_eq!(post["wm-target"], home.post_url().as_str());
    assert_eq!(post["author"]["type"], "card");
    assert_eq!(post["author"]["name"], "Alice");
    assert_eq!(post["content"]["text"], "Nice post!");
    assert!(post["wm-id"].is_i64());
    // The same entry as the API shows.
    let daemon = home.serve();
    let api: serde_json::Value = client()
        .get(daemon.url("/api/mentions.jf2"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(api["children"][0], *post);
    drop(daemon);
    // Signed with the secret: HMAC-SHA256 of the body.
    let signature = got[1].headers["x-backfeed-signature"].to_str().unwrap();
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.1.as_bytes()).unwrap();
    mac.update(&got[1].body);
    assert_eq!(
        signature,
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    );
    // Delivered once: never again.
    due_now(&home);
    notify(&home);
    home.ok(&["crawl"]);
    assert_eq!(hooks(&home).len(), 2);
    assert!(
        !home.log().iter().any(|d| d.to_string().contains(SECRET.1)),
        "the secret never reaches the log"
    );
    // The source goes away: a deletion notice.
    home.web.set("/reply/1", Fixture::status(410));
    home.ok(&["reverify"]);
    notify(&home);
    let got = hooks(&home);
    assert_eq!(got.len(), 3);
    assert_ne!(
        delivery(&got[2]),
        delivery(&got[1]),
        "another event, another id"
    );
    let body: serde_json::Value = serde_json::from_slice(&got[2].body).unwrap();
    assert_eq!(body["deleted"], true);
    assert_eq!(body["source"], source.as_str());
}

#[test]
fn held_mentions_say_they_wait_and_notify_again_when_approved() {
    let home = hook_home("[moderation]\nmode = \"queue\"\n");
    home.web.set("/hook", Fixture::status(202));
    let source = home.linking_page("/held/1", "Held");
    home.run(&["submit", &source, &home.post_url()]);
    assert_eq!(home.mentions()[0]["status"], "held");
    notify(&home);
    let got = hooks(&home);
    assert_eq!(got.len(), 1, "held: one event that says so");
    let body: serde_json::Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(body["held"], true, "{body}");
    assert_eq!(body["source"], source.as_str());
    notify(&home);
    assert_eq!(hooks(&home).len(), 1, "once per mention");
    let id = home.mentions()[0]["id"].to_string();
    home.ok(&["approve", &id]);
    notify(&home);
    let got = hooks(&home);
    assert_eq!(got.len(), 2);
    let body: serde_json::Value = serde_json::from_slice(&got[1].body).unwrap();
    assert!(body.get("held").is_none(), "published now: {body}");
}

#[test]
fn a_held_mention_mails_please_moderate_with_a_link_to_the_page() {
    let (home, smtp) = mail_home("");
    home.write_config(
        "[moderation]\nmode = \"queue\"\n[notify.email]\nsmtp_url_env = \"TEST_SMTP_URL\"\nfrom = \"backfeed@blog.example\"\nto = [\"me@blog.example\"]\n",
    );
    let url = smtp.url();
    let env = [("TEST_SMTP_URL", url.as_str())];
    let source = home.linking_page("/held/mail", "Waiting words");
    home.run(&["submit", &source, &home.post_url()]);
    home.run_env(&["notify"], &env);
    let mails = smtp.mails();
    assert_eq!(mails.len(), 1);
    let subject = decoded(&header(&mails[0], "Subject").unwrap());
    assert!(subject.contains("Please moderate"), "{subject}");
    assert!(mails[0].contains("/admin/"), "{}", mails[0]);
}

#[test]
fn a_crash_between_publish_and_delivery_loses_nothing() {
    let home = hook_home("[fetch]\nallow_private_addresses = true\ntimeout_secs = 10\n");
    // The receiver is slow: the daemon is killed while the delivery is in flight.
    home.web.set("/hook", Fixture::status(200).delayed(3_000));
    home.leases_for_restarts();
    let daemon = home.serve_env(&[SECRET]);
    let source = home.linking_page("/crash/1", "Crash");
    let r = client()
        .post(daemon.url("/webmention"))
        .form(&[("source", source.as_str()), ("target", &home.post_url())])
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    assert!(eventually(10, || home
        .mentions()
        .first()
        .is_some_and(|m| m["status"] == "verified")));
    assert!(
        eventually(10, || home.web.arrived("/hook") == 1),
        "the delivery is in flight"
    );
    daemon.kill();
    assert!(
        hooks(&home).is_empty(),
        "killed before the receiver answered"
    );
    home.web.set("/hook", Fixture::status(200));
    let daemon = home.serve_env(&[SECRET]);
    assert!(
        eventually(15, || !hooks(&home).is_empty()),
        "{}",
        daemon.log_text()
    );
    let body: serde_json::Value = serde_json::from_slice(&hooks(&home)[0].body).unwrap();
    assert_eq!(body["source"], source.as_str());
}

fn mail_home(digest: &str) -> (Home, Smtp) {
    let home = Home::new("");
    home.set_site_feed(&[(POST_PATH, "Grüße aus München")]);
    home.write_config(&format!(
        "[notify.email]\nsmtp_url_env = \"TEST_SMTP_URL\"\nfrom = \"backfeed@blog.example\"\nto = [\"me@blog.example\"]\ndigest = \"{digest}\"\n"
    ));
    home.ok(&["crawl"]);
    let smtp = Smtp::start(&home).expect("aiosmtpd is installed (.ci/run installs it)");
    (home, smtp)
}

/// The value of a header in a raw mail, unfolded.
fn header(mail: &str, name: &str) -> Option<String> {
    let head = mail
        .split("\n\n")
        .next()
        .unwrap_or("")
        .replace("\r\n", "\n");
    let unfolded = head.replace("\n ", " ").replace("\n\t", " ");
    unfolded
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")).map(str::to_string))
}

/// A subject as a reader sees it: RFC 2047 words decoded (by Python's email package).
fn decoded(subject: &str) -> String {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys, email.header; print(str(email.header.make_header(email.header.decode_header(sys.argv[1]))))",
            subject,
        ])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn one_mail_per_mention_with_safe_headers() {
    let (home, smtp) = mail_home("");
    let env = [("TEST_SMTP_URL", smtp.url())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // A hostile title: a line break and a header of its own.
    let evil = home.source(
        "/evil",
        &format!(
            "<title>Hi\r\nBcc: victim@evil.example</title><p><a href=\"{}\">x</a> Schöne Grüße</p>",
            home.post_url()
        ),
    );
    let plain = home.linking_page("/plain", "Plain words");
    home.ok(&["submit", &evil, &home.post_url()]);
    home.ok(&["submit", &plain, &home.post_url()]);
    let (code, out, err) = home.run_env(&["notify"], &env);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("delivered 2"), "{out}");
    let mails = smtp.mails();
    assert_eq!(mails.len(), 2, "one mail per mention");
    for mail in &mails {
        assert!(header(mail, "Bcc").is_none(), "no injected header: {mail}");
        assert_eq!(
            header(mail, "MIME-Version").as_deref(),
            Some("1.0"),
            "{mail}"
        );
        let id = header(mail, "Message-ID").unwrap_or_default();
        assert!(
            id.starts_with('<') && id.ends_with("@blog.example>"),
            "{id}"
        );
        let subject = decoded(&header(mail, "Subject").unwrap());
        assert!(
            subject.contains("“Grüße aus München”")
                && subject.starts_with("[Fixture blog] New mention"),
            "{subject}"
        );
    }
    assert!(mails.iter().any(|m| m.contains(&plain)));
    // Delivered: not again.
    home.run_env(&["notify"], &env);
    assert_eq!(smtp.mails().len(), 2);
}

#[test]
fn a_digest_lists_every_new_mention_in_one_mail() {
    let (home, smtp) = mail_home("0 0 8 * * *");
    let url = smtp.url();
    let env = [("TEST_SMTP_URL", url.as_str())];
    for i in 0..3 {
        let s = home.linking_page(&format!("/d/{i}"), &format!("Digest {i}"));
        home.ok(&["submit", &s, &home.post_url()]);
    }
    // Outside the digest, mail waits.
    home.run_env(&["notify"], &env);
    assert!(smtp.mails().is_empty());
    let (code, out, err) = home.run_env(&["notify", "--digest"], &env);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("delivered 3"), "{out}");
    let mails = smtp.mails();
    assert_eq!(mails.len(), 1);
    assert!(decoded(&header(&mails[0], "Subject").unwrap()).contains("3 new mentions"));
    for i in 0..3 {
        assert!(mails[0].contains(&home.web.url(&format!("/d/{i}"))));
    }
    // Nothing new, no mail.
    home.run_env(&["notify", "--digest"], &env);
    assert_eq!(smtp.mails().len(), 1);
}

#[test]
fn a_slow_webhook_gets_each_event_once_while_two_loops_deliver() {
    let home = hook_home("");
    // Leases of 3 s, and answers of 1.5 s: one loop's batch of four outlasts its first lease,
    // so only renewal keeps the later deliveries out of the second loop's hands.
    home.store_options("lease_secs = 3");
    home.web.set("/hook", Fixture::status(200).delayed(1500));
    for n in 1..=4 {
        let source = home.linking_page(&format!("/many/{n}"), &format!("Mention {n}"));
        home.ok(&["submit", &source, &home.post_url()]);
    }
    // Two delivery loops (two `notify` runs, as the daemon's loop and a crawl's end), the
    // second started once the first one's original leases have run out.
    let notify = || {
        home.command()
            .arg("notify")
            .env(SECRET.0, SECRET.1)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let first = notify();
    std::thread::sleep(std::time::Duration::from_millis(3500));
    let runs = [first, notify()];
    for mut run in runs {
        assert!(run.wait().unwrap().success());
    }
    let mut ids: Vec<String> = hooks(&home)
        .iter()
        .map(|s| {
            s.headers["x-backfeed-delivery"]
                .to_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(ids.len(), 4, "each event delivered once: {ids:?}");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 4, "four events, four ids");
}

#[test]
fn a_build_hooks_url_is_its_secret_and_shown_nowhere() {
    let home = Home::new("");
    let token = "build_hooks/SECRET-TOKEN-123";
    home.write_config(&format!(
        "[[notify.webhook]]\nurl = \"{}?key=SECRET-QUERY\"\n",
        home.web.url(&format!("/{token}"))
    ));
    home.ok(&["crawl"]);
    home.web.set(&format!("/{token}"), Fixture::status(500));
    let source = home.linking_page("/s/1", "A mention");
    home.ok(&["submit", &source, &home.post_url()]);
    let (_, out, err) = home.run_env(&["notify"], &[("RUST_LOG", "backfeed=debug")]);
    let status = home.ok(&["status"]);
    let status_json = home.ok(&["status", "--json"]);
    let log = home.ok(&["log", "--json", "--since", "1h"]);
    let daemon = home.serve();
    let metrics = daemon.text("/metrics");
    let served = daemon.log_text();
    for (what, text) in [
        ("notify", format!("{out}{err}")),
        ("status", status.clone()),
        ("status --json", status_json),
        ("log", log.clone()),
        ("metrics", metrics.clone()),
        ("serve's log", served),
    ] {
        assert!(
            !text.contains("SECRET-TOKEN-123") && !text.contains("SECRET-QUERY"),
            "{what} shows the hook's secret:\n{text}"
        );
    }
    assert!(
        status.contains("webhook 127.0.0.1"),
        "shown by its host: {status}"
    );
    assert!(
        metrics.contains("backfeed_notifications_pending{name=\"webhook 127.0.0.1"),
        "{metrics}"
    );
    assert!(log.contains("\"notify\""), "the delivery is logged: {log}");
}

#[test]
fn a_secret_variable_that_is_not_set_is_warned_about() {
    let home = hook_home("");
    // TEST_HOOK_SECRET is not set for this run: the hook would go unsigned.
    let status = home.ok(&["status"]);
    assert!(
        status.contains("WARNING")
            && status.contains("$TEST_HOOK_SECRET")
            && status.contains("unsigned"),
        "{status}"
    );
    let json: serde_json::Value = serde_json::from_str(&home.ok(&["status", "--json"])).unwrap();
    assert!(
        json["warnings"].to_string().contains("TEST_HOOK_SECRET"),
        "{json}"
    );
    // Set, no warning about it.
    let (_, status, _) = home.run_env(&["status"], &[SECRET]);
    assert!(!status.contains("$TEST_HOOK_SECRET"), "{status}");
}
