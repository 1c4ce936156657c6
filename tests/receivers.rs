//! Webmention, pingback and trackback against the real `backfeed serve`, with the fixture web
//! as the rest of the internet. Pingback calls come from Python's xmlrpc.client, an independent
//! implementation of the wire format.

mod support;
use support::*;

fn status_of(daemon: &Daemon, location: &str) -> serde_json::Value {
    assert!(location.starts_with(&daemon.base), "{location}");
    client().get(location).send().unwrap().json().unwrap()
}

fn send_webmention(daemon: &Daemon, source: &str, target: &str) -> reqwest::blocking::Response {
    client()
        .post(daemon.url("/webmention"))
        .form(&[("source", source), ("target", target)])
        .send()
        .unwrap()
}

#[test]
fn webmention_lifecycle_accept_verify_update_delete() {
    let home = Home::new("");
    home.ok(&["crawl"]);
    let daemon = home.serve();
    let source = home.linking_page("/alice/1", "First words");

    let r = send_webmention(&daemon, &source, &home.post_url());
    assert_eq!(r.status(), 201);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert!(location.contains("/webmention/"), "{location}");
    assert!(
        eventually(10, || status_of(&daemon, &location)["status"] == "verified"),
        "{:?}",
        status_of(&daemon, &location)
    );
    let st = status_of(&daemon, &location);
    assert_eq!(st["source"], source.as_str());
    assert_eq!(st["target"], home.post_url().as_str());

    // Edited source, re-sent: the same mention is updated.
    home.linking_page("/alice/1", "Second words");
    let r = send_webmention(&daemon, &source, &home.post_url());
    assert_eq!(r.status(), 201);
    assert_eq!(
        r.headers()["location"].to_str().unwrap(),
        location,
        "same pair, same status URL"
    );
    assert!(eventually(10, || home.mentions()[0]["excerpt"]
        .as_str()
        .unwrap_or("")
        .contains("Second words")));
    assert_eq!(home.mentions().len(), 1);

    // Source now 410 Gone, re-sent: deleted, and the feed drops it.
    let feed = daemon.text("/mentions.json");
    assert!(feed.contains(&source));
    home.web.set("/alice/1", Fixture::status(410));
    assert_eq!(
        send_webmention(&daemon, &source, &home.post_url()).status(),
        201
    );
    assert!(eventually(10, || status_of(&daemon, &location)["status"] == "deleted"));
    let feed = daemon.text("/mentions.json");
    assert!(!feed.contains(&source), "deleted mentions leave the feeds");

    // A source that no longer links also deletes.
    let other = home.linking_page("/alice/2", "Other");
    send_webmention(&daemon, &other, &home.post_url());
    assert!(eventually(10, || home.mentions().iter().any(
        |m| m["source"] == other.as_str() && m["status"] == "verified"
    )));
    home.source("/alice/2", "<p>link removed</p>");
    send_webmention(&daemon, &other, &home.post_url());
    assert!(eventually(10, || home.mentions().iter().any(
        |m| m["source"] == other.as_str() && m["status"] == "deleted"
    )));
    assert_eq!(daemon.terminate(), 0, "SIGTERM stops cleanly");
}

#[test]
fn webmention_bad_requests_get_400_with_a_reason() {
    let home = Home::new("[moderation]\nblocked_domains = [\"spam.example\"]\n");
    home.ok(&["crawl"]);
    let daemon = home.serve();
    let post = home.post_url();
    let source = home.linking_page("/s", "s");
    let junk_target = home.web.url("/blog/no-such-post");
    let home_page = home.web.url("/blog/");
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![("target", &post)], "missing source"),
        (vec![("source", &source)], "missing target"),
        (vec![("source", "not a url"), ("target", &post)], "source"),
        (
            vec![("source", "ftp://x.example/a"), ("target", &post)],
            "source",
        ),
        (vec![("source", &source), ("target", "junk")], "target"),
        (vec![("source", &post), ("target", &post)], "same"),
        (
            vec![
                ("source", &source),
                ("target", "https://elsewhere.example/p"),
            ],
            "not under this site",
        ),
        (
            vec![("source", &source), ("target", &junk_target)],
            "does not exist",
        ),
        (
            vec![("source", &source), ("target", &home_page)],
            "home page",
        ),
        (
            vec![("source", "https://www.spam.example/x"), ("target", &post)],
            "blocked",
        ),
        (
            // The same host, fully qualified: still blocked.
            vec![("source", "https://www.spam.example./x"), ("target", &post)],
            "blocked",
        ),
        (
            vec![
                ("source", "https://a.example/x\r\nSet-Cookie: y"),
                ("target", &post),
            ],
            "control characters",
        ),
        (
            vec![("source", "https://a.example/x\u{0}y"), ("target", &post)],
            "control characters",
        ),
    ];
    for (form, reason) in cases {
        let r = client()
            .post(daemon.url("/webmention"))
            .form(&form)
            .send()
            .unwrap();
        assert_eq!(r.status(), 400, "{form:?}");
        assert!(r.headers().get("location").is_none());
        let text = r.text().unwrap();
        assert!(text.contains(reason), "{form:?}: {text:?} lacks {reason:?}");
    }
    let r = client()
        .post(daemon.url("/webmention"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = client()
        .get(daemon.url("/webmention/999999"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 404);
}

fn python_pingback(server: &str, source: &str, target: &str) -> String {
    let script = r#"
import sys, xmlrpc.client
proxy = xmlrpc.client.ServerProxy(sys.argv[1])
try:
    print("OK", proxy.pingback.ping(sys.argv[2], sys.argv[3]))
except xmlrpc.client.Fault as f:
    print("FAULT", f.faultCode, f.faultString)
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script, server, source, target])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn pingback_answers_every_fault_code_to_an_independent_client() {
    let home = Home::new("[moderation]\nblocked_domains = [\"blocked.example\"]\n");
    home.ok(&["crawl"]);
    let daemon = home.serve();
    let xmlrpc = daemon.url("/xmlrpc");
    let post = home.post_url();
    let good = home.linking_page("/pb/good", "Pinging");

    let ok = python_pingback(&xmlrpc, &good, &format!("{post}#comments"));
    assert!(ok.starts_with("OK Pingback from"), "{ok}");
    assert_eq!(home.mentions()[0]["kind"], "pingback");
    assert_eq!(
        home.mentions()[0]["status"],
        "verified",
        "verified synchronously"
    );

    let no_link = home.source("/pb/nolink", "<p>nothing</p>");
    let cases = [
        (good.clone(), post.clone(), 48), // 0x30 already registered
        (home.web.url("/pb/missing"), post.clone(), 16), // 0x10 source 404
        ("not-a-url".to_string(), post.clone(), 16), // 0x10 source invalid
        (no_link, post.clone(), 17),      // 0x11 no link
        (good.clone(), home.web.url("/blog/gone-post/"), 32), // 0x20 target missing
        (good.clone(), "https://elsewhere.example/p".to_string(), 33), // 0x21 not a target
        ("https://x.blocked.example/p".to_string(), post.clone(), 49), // 0x31 denied
        (post.clone(), post.clone(), 0),  // 0 same resource
    ];
    for (source, target, code) in cases {
        let answer = python_pingback(&xmlrpc, &source, &target);
        assert!(
            answer.starts_with(&format!("FAULT {code} ")),
            "{source} → {target}: {answer}"
        );
    }
    let getpb = std::process::Command::new("python3")
        .args(["-c", "import sys,xmlrpc.client as x; print(x.ServerProxy(sys.argv[1]).pingback.extensions.getPingbacks(sys.argv[2]))", &xmlrpc, &post])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&getpb.stdout).contains(&good));
}

#[test]
fn xmlrpc_wire_shapes_and_malformed_bodies() {
    let home = Home::new("");
    home.ok(&["crawl"]);
    let daemon = home.serve();
    let post = |body: &str, content_type: &str| {
        let r = client()
            .post(daemon.url("/xmlrpc"))
            .header("content-type", content_type)
            .body(body.to_string())
            .send()
            .unwrap();
        (r.status().as_u16(), r.text().unwrap())
    };
    let (status, text) = post(
        "<?xml version=\"1.0\"?><methodCall><methodName>system.listMethods</methodName><params></params></methodCall>",
        "text/xml",
    );
    assert_eq!(status, 200);
    assert!(text.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?><methodResponse><params><param><value><array><data>"), "{text}");
    let laughs = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">]><methodCall><methodName>&lol2;</methodName></methodCall>"#;
    for (body, ct, code) in [
        ("this is not xml <<", "text/xml", "-32700"),
        (laughs, "application/xml", "-32700"),
        (
            "<methodCall><methodName>system.multicall</methodName><params/></methodCall>",
            "application/x-www-form-urlencoded",
            "-32601",
        ),
        (
            "<methodCall><methodName>pingback.ping</methodName><params><param><value>only one</value></param></params></methodCall>",
            "text/xml",
            "-32602",
        ),
        ("<methodResponse/>", "text/xml", "-32600"),
    ] {
        let (status, text) = post(body, ct);
        assert_eq!(status, 200, "faults travel in a 200");
        assert!(
            text.contains("<fault>") && text.contains(&format!("<int>{code}</int>")),
            "{body}: {text}"
        );
    }
    let big = format!(
        "<methodCall><methodName>{}</methodName></methodCall>",
        "x".repeat(200_000)
    );
    let r = client()
        .post(daemon.url("/xmlrpc"))
        .body(big)
        .send()
        .unwrap();
    assert_eq!(r.status(), 413, "oversized bodies are refused");
    assert!(daemon.log_text().find("panicked").is_none());
}

fn trackback(url: &str, form: &[(&str, &str)]) -> (u16, String) {
    let r = client().post(url).form(form).send().unwrap();
    (r.status().as_u16(), r.text().unwrap())
}

#[test]
fn trackback_success_and_failure_xml() {
    let home = Home::new("");
    home.ok(&["crawl"]);
    let daemon = home.serve();
    let source = home.source(
        "/tb/1",
        &format!("<p>See <a href=\"{}\">it</a></p>", home.post_url()),
    );
    let (status, body) = trackback(
        &daemon.url("/trackback/hello"),
        &[
            ("url", &source),
            ("title", "A trackback title"),
            ("excerpt", "Said <b>this</b>"),
            ("blog_name", "Bob's Blog"),
        ],
    );
    assert_eq!(status, 200);
    assert!(
        body.contains("<response>")
            && body.contains("<error>0</error>")
            && !body.contains("<message>"),
        "{body}"
    );
    assert!(eventually(10, || home
        .mentions()
        .first()
        .is_some_and(|m| m["status"] == "verified")));
    let m = &home.mentions()[0];
    assert_eq!(m["kind"], "trackback");
    assert_eq!(
        m["title"], "A trackback title",
        "the ping's title where the page gives none"
    );
    assert_eq!(m["author"]["name"], "Bob's Blog");

    let (status, body) = trackback(&daemon.url("/trackback/hello"), &[("title", "no url")]);
    assert_eq!(status, 200);
    assert!(
        body.contains("<error>1</error>")
            && body.contains("<message>the url field is required</message>"),
        "{body}"
    );
    let (status, body) = trackback(&daemon.url("/trackback/no-such-key"), &[("url", &source)]);
    assert_eq!(status, 404);
    assert!(body.contains("<error>1</error>"), "{body}");
    let by_query = format!("{}?target={}", daemon.url("/trackback"), home.post_url());
    let other = home.source("/tb/2", &format!("<a href=\"{}\">x</a>", home.post_url()));
    let (status, body) = trackback(&by_query, &[("url", &other)]);
    assert_eq!(
        (status, body.contains("<error>0</error>")),
        (200, true),
        "{body}"
    );

    // A trackback in ISO-8859-1, as the spec allows.
    let latin = "url=".to_string()
        + &home.source("/tb/3", &format!("<a href=\"{}\">x</a>", home.post_url()))
        + "&blog_name=M%FCnchen";
    let r = client()
        .post(daemon.url("/trackback/hello"))
        .header(
            "content-type",
            "application/x-www-form-urlencoded; charset=ISO-8859-1",
        )
        .body(latin)
        .send()
        .unwrap();
    assert!(r.text().unwrap().contains("<error>0</error>"));
    assert!(eventually(10, || home
        .mentions()
        .iter()
        .any(|m| m["author"]["name"] == "München")));
}

#[test]
fn moderation_queue_approve_reject_and_reversible_blocks() {
    let home = Home::new("[moderation]\nmode = \"queue\"\n");
    home.ok(&["crawl"]);
    let a = home.linking_page("/m/a", "A");
    let b = home.linking_page("/m/b", "B");
    home.ok(&["submit", &a, &home.post_url()]);
    home.ok(&["submit", &b, &home.post_url()]);
    let held: Vec<_> = home
        .mentions()
        .into_iter()
        .filter(|m| m["status"] == "held")
        .collect();
    assert_eq!(held.len(), 2, "queue mode holds verified mentions");
    let daemon = home.serve();
    let feed = || daemon.text("/mentions.jf2");
    assert!(!feed().contains("/m/a"), "held mentions are not published");

    let id_a = home
        .mentions()
        .iter()
        .find(|m| m["source"] == a.as_str())
        .unwrap()["id"]
        .to_string();
    let id_b = home
        .mentions()
        .iter()
        .find(|m| m["source"] == b.as_str())
        .unwrap()["id"]
        .to_string();
    assert!(home.ok(&["approve", &id_a]).contains("verified"));
    assert!(feed().contains("/m/a"));
    home.ok(&["reject", &id_b]);
    // A re-sent ping keeps the moderator's rejection.
    assert_eq!(send_webmention(&daemon, &b, &home.post_url()).status(), 201);
    assert!(
        eventually(10, || home.queue_idle()),
        "the ping was processed"
    );
    assert!(eventually(10, || {
        home.mentions()
            .iter()
            .any(|m| m["source"] == b.as_str() && m["status"] == "rejected")
    }));
    assert!(!feed().contains("/m/b"));

    // Blocking 127.0.0.1 hides A and refuses new pings; lifting it brings A back.
    assert!(
        home.ok(&["block", "127.0.0.1"])
            .contains("1 mentions hidden")
    );
    assert!(!feed().contains("/m/a"));
    let r = send_webmention(&daemon, &home.linking_page("/m/c", "C"), &home.post_url());
    assert_eq!(r.status(), 400);
    assert!(r.text().unwrap().contains("blocked"));
    assert!(home.ok(&["block", "--list"]).contains("127.0.0.1"));
    home.ok(&["block", "--remove", "127.0.0.1"]);
    assert_eq!(
        home.run(&["block"]).0,
        2,
        "a domain is required unless --list"
    );
    assert!(feed().contains("/m/a"));
    assert_eq!(home.run(&["approve", "424242"]).0, 1);
}

#[test]
fn rate_limits_answer_429_with_retry_after() {
    let home = Home::new("");
    home.server_options("rate_limit_per_client = 3");
    home.ok(&["crawl"]);
    let daemon = home.serve();
    let source = home.linking_page("/r", "r");
    let statuses: Vec<u16> = (0..5)
        .map(|_| {
            send_webmention(&daemon, &source, &home.post_url())
                .status()
                .as_u16()
        })
        .collect();
    assert_eq!(&statuses[..3], &[201, 201, 201], "{statuses:?}");
    assert_eq!(statuses[4], 429, "{statuses:?}");
    let r = send_webmention(&daemon, &source, &home.post_url());
    assert_eq!(r.status(), 429);
    assert!(
        r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    let metrics = daemon.text("/metrics");
    assert!(
        metrics.contains("backfeed_rate_limited_total 3"),
        "{metrics}"
    );
}

#[test]
fn pings_naming_one_source_host_are_limited_too() {
    let home = Home::new("");
    home.server_options("rate_limit_per_client = 0\nrate_limit_per_source_host = 2");
    home.ok(&["crawl"]);
    let daemon = home.serve();
    let statuses: Vec<u16> = (0..3)
        .map(|i| {
            send_webmention(
                &daemon,
                &home.linking_page(&format!("/victim/{i}"), "v"),
                &home.post_url(),
            )
            .status()
            .as_u16()
        })
        .collect();
    assert_eq!(
        statuses,
        [201, 201, 429],
        "a flood naming one host is cut off, whatever the client"
    );
}

#[test]
fn snippet_prints_what_templates_need() {
    let home = Home::new("");
    let out = home.ok(&["snippet", &home.post_url()]);
    let public = format!("http://127.0.0.1:{}/", home.port);
    assert!(
        out.contains(&format!("<link rel=\"pingback\" href=\"{public}xmlrpc\">")),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "<link rel=\"webmention\" href=\"{public}webmention\">"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("X-Pingback: {public}xmlrpc")),
        "{out}"
    );
    assert!(
        out.contains(&format!("Link: <{public}webmention>; rel=\"webmention\"")),
        "{out}"
    );
    assert!(
        out.contains("trackback:ping=")
            && out.contains(&format!("dc:identifier=\"{}\"", home.post_url())),
        "{out}"
    );
    // The discovery regex of the Pingback spec must find our tag (rel first, double quotes).
    assert!(out.contains("<link rel=\"pingback\" href=\""));
}

#[test]
fn a_trackback_after_a_pingback_is_logged_as_a_trackback() {
    // WordPress sends both for one post: the log says how each arrived; the mention keeps
    // its first kind.
    let home = Home::new("");
    home.ok(&["crawl"]);
    let daemon = home.serve();
    let source = home.linking_page("/wp/1", "A WordPress post");
    let answer = python_pingback(&daemon.url("/xmlrpc"), &source, &home.post_url());
    assert!(answer.starts_with("OK"), "{answer}");
    let (status, body) = trackback(&daemon.url("/trackback/hello"), &[("url", &source)]);
    assert_eq!(status, 200);
    assert!(body.contains("<error>0</error>"), "{body}");
    let kinds = || -> Vec<String> {
        home.log()
            .iter()
            .filter(|d| d["source"] == source.as_str() && d["outcome"] == "verified")
            .map(|d| d["kind"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(eventually(10, || kinds().len() == 2), "{:?}", home.log());
    assert_eq!(kinds(), ["pingback", "trackback"]);
    assert_eq!(home.mentions()[0]["kind"], "pingback");
}

#[test]
fn private_ip_literal_sources_get_400_at_once() {
    let home = Home::new("[fetch]\nallow_private_addresses = false\ntimeout_secs = 2\n");
    home.ok(&["crawl"]); // the site is configured, so it is fetched from loopback as is
    let daemon = home.serve();
    for source in [
        "http://127.0.0.1/a",
        "http://[::1]/a",
        "http://10.0.0.1/a",
        "http://[::127.0.0.1]/a",
        "http://[::ffff:192.168.1.1]/a",
        "http://169.254.169.254/latest/meta-data/",
    ] {
        let r = send_webmention(&daemon, source, &home.post_url());
        assert_eq!(r.status(), 400, "{source}");
        assert!(r.headers().get("location").is_none());
        let text = r.text().unwrap();
        assert!(
            text.starts_with("invalid_source")
                && text.contains("not a public address")
                && text.contains("allow_private_addresses"),
            "{source}: {text}"
        );
    }
    // A name may resolve anywhere: it is accepted now and checked when fetched.
    let r = send_webmention(&daemon, "http://localhost:9/a", &home.post_url());
    assert_eq!(r.status(), 201);
    assert!(home.mentions().is_empty() || home.mentions()[0]["status"] != "verified");
}

#[test]
fn outsiders_cannot_create_posts() {
    let home = Home::new("");
    home.ok(&["crawl"]);
    let daemon = home.serve();
    let source = home.linking_page("/o/1", "words");
    let posts = || home.ok(&["posts", "--json"]);
    let before = posts();
    // Query variants of a known post, a long query, and a page that is no post: 400, no post.
    home.web.set(
        "/blog/about/",
        Fixture::html("<title>About</title><p>Just a page.</p>"),
    );
    let long_query = format!("{}?{}", home.post_url(), "q".repeat(5_000));
    for target in [
        format!("{}?x=1", home.post_url()),
        format!("{}?x=2", home.post_url()),
        long_query,
        home.web.url("/blog/about/"),
    ] {
        let r = send_webmention(&daemon, &source, &target);
        assert_eq!(r.status(), 400, "{}", &target[..target.len().min(80)]);
        assert!(r.text().unwrap().contains("not a known post"));
    }
    assert_eq!(posts(), before, "the posts table did not grow");

    // A post newer than the last crawl is learned on the spot: its page says it is a post.
    home.web.set(
        "/blog/2024/new/",
        Fixture::html("<title>New</title><article class=\"h-entry\"><p>Fresh.</p></article>"),
    );
    let r = send_webmention(&daemon, &source, &home.web.url("/blog/2024/new/"));
    assert_eq!(r.status(), 201);
    // A variant whose canonical URL is a known post names that post.
    home.web.set(
        "/blog/2024/hello/amp/",
        Fixture::html(&format!(
            "<link rel=\"canonical\" href=\"{}\"><p>AMP</p>",
            home.post_url()
        )),
    );
    let r = send_webmention(
        &daemon,
        &home.linking_page("/o/2", "amp"),
        &home.web.url("/blog/2024/hello/amp/"),
    );
    assert_eq!(r.status(), 201);
    let posts: Vec<serde_json::Value> = serde_json::from_str(&posts()).unwrap();
    assert_eq!(posts.len(), 2, "{posts:?}");
}

#[test]
fn slow_and_idle_connections_are_bounded() {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::Duration;
    let home = Home::new("");
    home.server_options(
        "max_connections_per_client = 20\nheader_timeout_secs = 1\nbody_timeout_secs = 1",
    );
    home.ok(&["crawl"]);
    let daemon = home.serve();
    let addr = daemon
        .base
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let answer = |stream: &mut TcpStream| -> String {
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut buf = Vec::new();
        let _ = stream.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    };
    // The readiness check's connection is closing: let it go first.
    std::thread::sleep(Duration::from_millis(500));
    // Twenty half-sent requests hold every slot this client has.
    let mut partial: Vec<TcpStream> = (0..20)
        .map(|_| {
            let mut s = TcpStream::connect(&addr).unwrap();
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                .unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut one_more = TcpStream::connect(&addr).unwrap();
    one_more
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap_or(());
    let got = answer(&mut one_more);
    assert_eq!(
        got,
        "",
        "over the per-client cap: closed unanswered; {}",
        daemon.log_text()
    );
    // The header timeout closes the half-sent ones, and the server answers again.
    for s in &mut partial {
        let text = answer(s);
        assert!(!text.contains("200 OK"), "{text}");
    }
    let r = client().get(daemon.url("/healthz")).send().unwrap();
    assert_eq!(r.status(), 200);
    // A body that never finishes is answered once the body timeout passes, with the reason.
    let mut slow_body = TcpStream::connect(&addr).unwrap();
    slow_body
        .write_all(
            b"POST /webmention HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nsource=",
        )
        .unwrap();
    let text = answer(&mut slow_body);
    assert!(
        text.starts_with("HTTP/1.1 4") && text.contains("not received within"),
        "{text}"
    );
}

#[test]
fn redirects_and_spellings_cannot_aim_fetches_at_one_host() {
    // Budget: 4 fetches a minute per host, counted where each hop leads.
    let home = Home::new(
        "[fetch]\nallow_private_addresses = true\ntimeout_secs = 2\nper_host_per_minute = 4\n",
    );
    home.without_rate_limits();
    home.ok(&["crawl"]);
    let daemon = home.serve();
    let port = home.web.addr.port();
    let post = home.post_url();
    home.web.set(
        "/victim",
        Fixture::html(&format!("<a href=\"{post}\">victim</a>")),
    );
    let mut sources = Vec::new();
    for i in 0..3 {
        // Sources on one host that redirect to the victim, spelled another way.
        let path = format!("/r/{i}");
        home.web.set(
            &path,
            Fixture::redirect(&format!("http://LOCALHOST:{port}/victim?{i}")),
        );
        sources.push(home.web.url(&path));
        // And sources on the victim's host itself, in other spellings.
        let direct = format!("/v/{i}");
        home.web
            .set(&direct, Fixture::html(&format!("<a href=\"{post}\">v</a>")));
        sources.push(format!("http://LocalHost:{port}{direct}"));
        sources.push(format!("http://localhost:{port}{direct}?again"));
    }
    for source in &sources {
        assert_eq!(send_webmention(&daemon, source, &post).status(), 201);
    }
    let settled = || {
        home.mentions()
            .iter()
            .filter(|m| m["status"] == "verified")
            .count()
            >= 4
    };
    assert!(eventually(10, settled));
    assert!(
        eventually(10, || home.queue_idle()),
        "nothing left to fetch"
    );
    let victim_fetches: usize = ["/victim", "/v/0", "/v/1", "/v/2"]
        .iter()
        .map(|p| home.web.seen_path(p).len())
        .sum();
    assert_eq!(victim_fetches, 4, "fetches that reached the victim's host");
    let mentions = home.mentions();
    assert_eq!(mentions.len(), 9);
    assert!(
        mentions.iter().all(|m| m["status"] != "rejected"),
        "over budget means later, never refused: {mentions:#?}"
    );
    assert_eq!(
        mentions.iter().filter(|m| m["status"] == "pending").count(),
        5
    );
}

#[test]
fn one_hosts_hanging_pages_do_not_hold_every_fetch_slot() {
    let home = Home::new(
        "[fetch]\nallow_private_addresses = true\ntimeout_secs = 2\nper_host = 2\nconcurrency = 8\nper_host_per_minute = 0\n",
    );
    home.without_rate_limits();
    home.ok(&["crawl"]);
    let daemon = home.serve();
    let port = home.web.addr.port();
    let post = home.post_url();
    // Twenty sources on one host that hang past the fetch timeout...
    for i in 0..20 {
        let path = format!("/hang/{i}");
        home.web.set(
            &path,
            Fixture::html(&format!("<a href=\"{post}\">h</a>")).delayed(5_000),
        );
        let source = format!("http://localhost:{port}{path}");
        assert_eq!(send_webmention(&daemon, &source, &post).status(), 201);
    }
    // ...then one honest source on another host.
    let honest = home.linking_page("/honest", "honest");
    assert_eq!(send_webmention(&daemon, &honest, &post).status(), 201);
    assert!(eventually(10, || home.mentions().iter().any(
        |m| m["source"] == honest.as_str() && m["status"] == "verified"
    )));
    let decisions = home.log();
    let first = &decisions[0];
    assert_eq!(
        first["source"],
        honest.as_str(),
        "the honest source is decided before any hanging one times out: {decisions:#?}"
    );
}

#[test]
fn a_source_edited_and_pinged_again_during_its_fetch_is_fetched_again() {
    let home = Home::new("");
    home.ok(&["crawl"]);
    let daemon = home.serve();
    // The first fetch is slow; the author edits the page meanwhile and pings again.
    let source = home.edited_during_fetch("/edit/1", "First words", "Second words");
    assert_eq!(
        send_webmention(&daemon, &source, &home.post_url()).status(),
        201
    );
    assert!(
        eventually(10, || home.web.arrived("/edit/1") == 1),
        "the first fetch is in flight"
    );
    assert_eq!(
        send_webmention(&daemon, &source, &home.post_url()).status(),
        201
    );
    assert!(
        eventually(10, || home.mentions()[0]["excerpt"]
            .as_str()
            .unwrap_or("")
            .contains("Second words")),
        "the second ping's content: {:?}",
        home.mentions()
    );
    assert_eq!(home.web.arrived("/edit/1"), 2, "fetched once per ping");
}

#[test]
fn healthz_answers_503_within_its_deadline_while_another_process_locks_the_store() {
    let home = Home::new("");
    home.ok(&["crawl"]);
    let daemon = home.serve();
    let health = || client().get(daemon.url("/healthz")).send().unwrap();
    assert_eq!(health().status(), 200);
    // (These tests allow private addresses; the daemon says so when it starts.)
    assert!(eventually(10, || daemon
        .log_text()
        .contains("allow_private_addresses is on")));
    let db = home.sql();
    db.execute_batch(if support::on_postgres() {
        "BEGIN; LOCK TABLE health IN ACCESS EXCLUSIVE MODE"
    } else {
        "BEGIN EXCLUSIVE"
    });
    let r = health();
    assert_eq!(r.status(), 503);
    let text = r.text().unwrap();
    assert!(
        text.contains("no answer within"),
        "its own deadline, not SQLite's: {text}"
    );
    db.execute_batch("COMMIT");
    assert!(eventually(10, || health().status() == 200));
}

#[test]
fn a_worker_stalled_past_its_lease_finds_its_late_outcome_refused() {
    // The blog and the source share one host, and on PostgreSQL the stalled daemon keeps its
    // slots there until they expire (its fetch's, and one kept for its next fetch: the fetch
    // timeout + 20 s, by design): room for the process that takes the job over.
    let home = Home::new(
        "[fetch]\nallow_private_addresses = true\ntimeout_secs = 2\nper_host_per_minute = 0\nper_host = 4\n",
    );
    home.store_options("lease_secs = 3");
    home.ok(&["crawl"]);
    let daemon = home.serve();
    let source = home.edited_during_fetch("/paused/1", "Old words", "New words");
    assert_eq!(
        send_webmention(&daemon, &source, &home.post_url()).status(),
        201
    );
    assert!(eventually(10, || home.web.arrived("/paused/1") == 1));
    // The daemon stalls mid-fetch (a paused VM, a stop-the-world swap) and renews nothing.
    let pid = daemon.child.id() as i32;
    // SAFETY: signals to our own child process; no memory is involved.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let db = home.sql();
    let expired = || {
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        db.query_i64(
            "SELECT COUNT(*) FROM jobs WHERE kind = 'verify' AND lease_until < ?1",
            &[&now],
        ) == 1
    };
    assert!(eventually(15, expired), "its lease runs out");
    // Another loop takes the job over and stores the newer page.
    home.ok(&["submit", &source, &home.post_url()]);
    let excerpt = || {
        home.mentions()[0]["excerpt"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    assert!(excerpt().contains("New words"), "{}", excerpt());
    // The stalled daemon wakes: its outcome for the old page is refused, and logged.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    assert!(
        eventually(15, || daemon.log_text().contains("outcome refused")),
        "{}",
        daemon.log_text()
    );
    assert!(
        excerpt().contains("New words"),
        "the newer outcome stands: {}",
        excerpt()
    );
}

#[test]
fn silent_and_dripping_connections_cannot_keep_anyone_else_out() {
    let home = Home::new("");
    // Silent connections are not closed by their deadline during this test (30 s): room must
    // come from closing the oldest of them when someone else needs a slot.
    home.server_options("header_timeout_secs = 30\nbody_timeout_secs = 2");
    home.ok(&["crawl"]);
    let daemon = home.serve();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], home.port));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let connect_from = |last_octet: u8| async move {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket
            .bind(std::net::SocketAddr::from(([127, 0, 0, last_octet], 0)))
            .unwrap();
        socket.connect(addr).await.unwrap()
    };
    // 1,000 connections from ten addresses that never send a byte: every slot there is.
    let silent: Vec<tokio::net::TcpStream> = rt.block_on(async {
        let mut all = Vec::new();
        for i in 0..1000 {
            all.push(connect_from(2 + (i / 100) as u8).await);
        }
        all
    });
    // 20 bodies dripped a byte at a time from one more address.
    let drips = rt.block_on(async {
        let mut drips = Vec::new();
        for _ in 0..20 {
            use tokio::io::AsyncWriteExt;
            let mut s = connect_from(12).await;
            s.write_all(b"POST /webmention HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nsource=")
                .await
                .unwrap();
            drips.push(s);
        }
        drips
    });
    let dripping = rt.spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut answers = Vec::new();
        for mut s in drips {
            // A byte every 300 ms, until the server answers or ten seconds pass.
            let mut buf = vec![0u8; 512];
            let mut answer = String::new();
            for _ in 0..33 {
                if s.write_all(b"a").await.is_err() {
                    break;
                }
                if let Ok(Ok(n)) =
                    tokio::time::timeout(std::time::Duration::from_millis(300), s.read(&mut buf))
                        .await
                {
                    answer = String::from_utf8_lossy(&buf[..n]).into_owned();
                    break;
                }
            }
            answers.push(answer);
        }
        answers
    });
    // Someone else, meanwhile, is served: health checks and a webmention.
    let other = client_builder()
        .timeout(std::time::Duration::from_secs(5))
        .build()
        .unwrap();
    for _ in 0..3 {
        let health = other.get(daemon.url("/healthz")).send();
        assert!(
            health.as_ref().is_ok_and(|r| r.status() == 200),
            "healthz: {health:?}\n{}",
            daemon
                .log_text()
                .lines()
                .rev()
                .take(5)
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    let source = home.linking_page("/slowloris/ok", "Still served");
    let r = other
        .post(daemon.url("/webmention"))
        .form(&[("source", source.as_str()), ("target", &home.post_url())])
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    let answers = rt.block_on(dripping).unwrap();
    assert!(
        answers.iter().all(|a| a.starts_with("HTTP/1.1 408")),
        "every dripped body is cut off: {answers:?}"
    );
    drop(silent);
}

#[test]
fn the_public_status_url_does_not_tell_refused_from_unreachable() {
    let home = Home::new("[fetch]\nallow_private_addresses = false\ntimeout_secs = 2\n");
    home.ok(&["crawl"]);
    let daemon = home.serve();
    // A name (not an IP literal, which is refused at once) that leads inside.
    let source = format!("http://localhost:{}/inside", home.web.addr.port());
    let r = send_webmention(&daemon, &source, &home.post_url());
    assert_eq!(r.status(), 201);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert!(eventually(10, || status_of(&daemon, &location)["reason"].is_string()));
    let public = status_of(&daemon, &location)["reason"].to_string();
    assert!(public.contains("refused or unreachable"), "{public}");
    assert!(!public.contains("public address"), "{public}");
    // The operator reads why.
    let log = serde_json::to_string(&home.log()).unwrap();
    assert!(log.contains("public address"), "{log}");
}

#[test]
fn a_ping_to_a_posts_index_html_is_a_ping_to_that_post() {
    let home = Home::new("");
    home.ok(&["crawl"]);
    let daemon = home.serve();
    let source = home.linking_page("/alias/1", "Linked by its file name");
    let alias = format!("{}index.html", home.post_url());
    assert_eq!(send_webmention(&daemon, &source, &alias).status(), 201);
    assert!(eventually(10, || home
        .mentions()
        .first()
        .is_some_and(|m| m["status"] == "verified")));
    let posts: Vec<serde_json::Value> =
        serde_json::from_str(&home.ok(&["posts", "--json"])).unwrap();
    assert_eq!(posts.len(), 1, "no second post: {posts:?}");
    assert_eq!(home.mentions()[0]["target"], home.post_url().as_str());
}

#[test]
fn types_left_out_of_collect_are_not_kept() {
    let home = Home::new("[moderation]\ncollect = [\"reply\", \"mention\"]\n");
    home.ok(&["crawl"]);
    let like = home.source(
        "/likes/1",
        &format!(
            r#"<div class="h-entry"><a class="u-like-of" href="{}">liked</a></div>"#,
            home.post_url()
        ),
    );
    let reply = home.source(
        "/replies/1",
        &format!(
            r#"<div class="h-entry"><a class="u-in-reply-to" href="{}">re</a><p class="e-content">Yes!</p></div>"#,
            home.post_url()
        ),
    );
    home.run(&["submit", &like, &home.post_url()]);
    home.ok(&["submit", &reply, &home.post_url()]);
    let status = |s: &str| home.status_of(s);
    assert_eq!(status(&like), "rejected");
    assert_eq!(status(&reply), "verified");
    assert!(
        home.log()
            .iter()
            .any(|d| d["source"] == like.as_str() && d["reason"] == "type not collected"),
        "{:?}",
        home.log()
    );
    let (code, _, err) = {
        let bad = Home::new("[moderation]\ncollect = [\"likes\"]\n");
        bad.run(&["posts"])
    };
    assert_eq!(code, 2);
    assert!(err.contains("moderation.collect"), "{err}");
}

#[test]
fn the_bloggers_own_syndicated_copies_are_not_mentions() {
    let home = Home::new("");
    let me = home.web.url("/@me");
    let config = std::fs::read_to_string(home.config_path()).unwrap();
    std::fs::write(
        home.config_path(),
        config.replacen(
            "title = ",
            &format!("own_profiles = [\"{me}\"]\ntitle = "),
            1,
        ),
    )
    .unwrap();
    home.ok(&["crawl"]);
    let entry = |author: &str, words: &str| {
        format!(
            r#"<div class="h-entry"><a class="p-author h-card" href="{author}">A</a>
            <p class="e-content">{words} <a href="{}">the post</a></p></div>"#,
            home.post_url()
        )
    };
    // The blogger's copy on their own account, and one elsewhere signed with their profile.
    let copy = home.source("/@me/1", &entry(&me, "My new post:"));
    let signed = home.source("/elsewhere/1", &entry(&me, "Also mine:"));
    // Someone else's reply in that thread.
    let reply = home.source(
        "/@friend/2",
        &entry(&home.web.url("/@friend"), "Great read!"),
    );
    for source in [&copy, &signed, &reply] {
        home.run(&["submit", source, &home.post_url()]);
    }
    let status = |s: &str| home.status_of(s);
    assert_eq!(status(&copy), "rejected");
    assert_eq!(status(&signed), "rejected");
    assert_eq!(status(&reply), "verified");
    let own: Vec<serde_json::Value> = home
        .log()
        .into_iter()
        .filter(|d| d["reason"] == "own syndicated copy")
        .collect();
    assert_eq!(own.len(), 2, "{own:?}");
    // Accounts the home page names (rel="me") count too, read at each crawl — conditionally:
    // a home page that answers 304 keeps what was read before.
    home.web.set(
        "/blog/",
        Fixture::html(&format!(
            r#"<link rel="me" href="{}">"#,
            home.web.url("/@me-too")
        ))
        .etag("\"home-1\""),
    );
    home.ok(&["crawl"]);
    home.ok(&["crawl"]);
    let home_reads = home.web.seen("/blog/");
    assert_eq!(
        home_reads.last().map(|s| s.status),
        Some(304),
        "the second read is conditional"
    );
    let other_copy = home.source(
        "/@me-too/9",
        &entry(&home.web.url("/@me-too"), "Cross-posted:"),
    );
    home.run(&["submit", &other_copy, &home.post_url()]);
    assert_eq!(status(&other_copy), "rejected");
}
