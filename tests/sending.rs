//! Sending, through the real binary against a loopback fixture web: the 23 discovery cases of
//! webmention.rocks, its update and delete cases, Pingback (answered by Python's own XML-RPC
//! server), Trackback, one backfeed pinging another, and what `send` and `sent` print.

mod support;
use support::*;

/// A post page with `links` inside its h-entry content, and a template around it
/// whose links must never be pinged.
fn post_page(home: &Home, links: &[String]) -> Fixture {
    let content: String = links
        .iter()
        .map(|l| format!("<p>See <a href=\"{l}\">this</a>.</p>"))
        .collect();
    Fixture::html(&format!(
        "<html><body><nav><a href=\"{nav}\">a template link</a></nav>\
         <article class=\"h-entry\"><h1 class=\"p-name\">A post</h1>\
         <div class=\"e-content\">{content}</div></article>\
         <footer><a href=\"{nav}\">again</a></footer></body></html>",
        nav = home.web.url("/rocks/template")
    ))
}

/// POSTs an endpoint received.
fn posts_to(home: &Home, path: &str) -> Vec<Seen> {
    home.web
        .seen(path)
        .into_iter()
        .filter(|s| s.method == "POST")
        .collect()
}

/// The webmention.rocks discovery catalogue (tests 1–23) on the fixture web: each test page at
/// `/rocks/N`, its endpoint at `/rocks/N/webmention` (or what the case says), decoys at
/// `…/error`. Returns the (target, endpoint path) pairs.
fn rocks(home: &Home) -> Vec<(String, String)> {
    let web = &home.web;
    let abs = |p: &str| web.url(p);
    let page =
        |body: &str| Fixture::html(&format!("<html><head></head><body>{body}</body></html>"));
    let mut cases: Vec<(u32, Fixture, String)> = Vec::new();
    let ep = |n: u32| format!("/rocks/{n}/webmention");
    let err = |n: u32| format!("/rocks/{n}/webmention/error");
    cases.push((
        1,
        page("").header("Link", &format!("<{}>; rel=webmention", ep(1))),
        ep(1),
    ));
    cases.push((
        2,
        page("").header("Link", &format!("<{}>; rel=webmention", abs(&ep(2)))),
        ep(2),
    ));
    cases.push((
        3,
        Fixture::html(&format!(
            "<html><head><link rel=\"webmention\" href=\"{}\"></head></html>",
            ep(3)
        )),
        ep(3),
    ));
    cases.push((
        4,
        Fixture::html(&format!(
            "<html><head><link href=\"{}\" rel=\"webmention\"></head></html>",
            abs(&ep(4))
        )),
        ep(4),
    ));
    cases.push((
        5,
        page(&format!("<a rel=\"webmention\" href=\"{}\">e</a>", ep(5))),
        ep(5),
    ));
    cases.push((
        6,
        page(&format!(
            "<a href=\"{}\" rel=\"webmention\">e</a>",
            abs(&ep(6))
        )),
        ep(6),
    ));
    cases.push((
        7,
        page("").header("LinK", &format!("<{}>; rel=webmention", ep(7))),
        ep(7),
    ));
    cases.push((
        8,
        page("").header("Link", &format!("<{}>; rel=\"webmention\"", ep(8))),
        ep(8),
    ));
    cases.push((
        9,
        page(&format!(
            "<link rel=\"webmention somethingelse\" href=\"{}\">",
            ep(9)
        )),
        ep(9),
    ));
    cases.push((
        10,
        page("").header(
            "Link",
            &format!("<{}>; rel=\"webmention somethingelse\"", ep(10)),
        ),
        ep(10),
    ));
    cases.push((
        11,
        page(&format!(
            "<link rel=\"webmention\" href=\"{e}\"><a rel=\"webmention\" href=\"{e}\">e</a>",
            e = err(11)
        ))
        .header("Link", &format!("<{}>; rel=webmention", ep(11))),
        ep(11),
    ));
    cases.push((
        12,
        page(&format!(
            "<link rel=\"not-webmention\" href=\"{}\"><a rel=\"webmention\" href=\"{}\">e</a>",
            err(12),
            ep(12)
        )),
        ep(12),
    ));
    cases.push((
        13,
        page(&format!(
            "<!-- <a rel=\"webmention\" href=\"{}\">no</a> --><a rel=\"webmention\" href=\"{}\">e</a>",
            err(13),
            ep(13)
        )),
        ep(13),
    ));
    cases.push((
        14,
        page(&format!(
            "<code>&lt;a rel=\"webmention\" href=\"{}\"&gt;&lt;/a&gt;</code><a rel=\"webmention\" href=\"{}\">e</a>",
            err(14),
            ep(14)
        )),
        ep(14),
    ));
    // 15: an empty href is the page itself.
    cases.push((
        15,
        page("<link rel=\"webmention\" href=\"\">"),
        "/rocks/15".into(),
    ));
    cases.push((
        16,
        page(&format!(
            "<a rel=\"webmention\" href=\"{}\">e</a><link rel=\"webmention\" href=\"{}\">",
            ep(16),
            err(16)
        )),
        ep(16),
    ));
    cases.push((
        17,
        page(&format!(
            "<link rel=\"webmention\" href=\"{}\"><a rel=\"webmention\" href=\"{}\">e</a>",
            ep(17),
            err(17)
        )),
        ep(17),
    ));
    cases.push((
        18,
        page("")
            .header("Link", &format!("<{}>; rel=\"other\"", err(18)))
            .header("Link", &format!("<{}>; rel=\"webmention\"", ep(18))),
        ep(18),
    ));
    cases.push((
        19,
        page("").header(
            "Link",
            &format!(
                "<{}>; rel=\"other\", <{}>; rel=\"webmention\"",
                err(19),
                ep(19)
            ),
        ),
        ep(19),
    ));
    cases.push((
        20,
        page(&format!(
            "<link rel=\"webmention\"><a rel=\"webmention\" href=\"{}\">e</a>",
            ep(20)
        )),
        ep(20),
    ));
    cases.push((
        21,
        page(&format!(
            "<link rel=\"webmention\" href=\"{}?query=yes\">",
            ep(21)
        )),
        format!("{}?query=yes", ep(21)),
    ));
    // 22: path-relative, against /rocks/22.
    cases.push((
        22,
        page("<link rel=\"webmention\" href=\"22/webmention\">"),
        ep(22),
    ));
    let mut out = Vec::new();
    for (n, fixture, endpoint) in cases {
        let path = format!("/rocks/{n}");
        web.set(&path, fixture);
        if endpoint != path {
            web.set(&endpoint, Fixture::status(202));
        }
        web.set(&err(n), Fixture::status(202));
        out.push((web.url(&path), endpoint));
    }
    // 23: a redirect to a page whose endpoint is relative to where it landed; every URL
    // answers once only, so discovery must make one GET.
    web.set_sequence(
        "/rocks/23",
        vec![
            Fixture::redirect("/rocks/23/page/k3y"),
            Fixture::status(404),
        ],
    );
    web.set_sequence(
        "/rocks/23/page/k3y",
        vec![
            page("<a rel=\"webmention\" href=\"webmention-endpoint/k3y\">e</a>")
                .header("Link", "<webmention-endpoint/k3y>; rel=webmention"),
            Fixture::status(404),
        ],
    );
    web.set(
        "/rocks/23/page/webmention-endpoint/k3y",
        Fixture::status(202),
    );
    out.push((
        web.url("/rocks/23"),
        "/rocks/23/page/webmention-endpoint/k3y".into(),
    ));
    // The template's link has an endpoint too: it must never be used.
    web.set(
        "/rocks/template",
        page("").header("Link", "</rocks/template/webmention>; rel=webmention"),
    );
    out
}

#[test]
fn the_webmention_rocks_discovery_cases_each_get_exactly_one_ping() {
    let home = Home::new("");
    let cases = rocks(&home);
    let links: Vec<String> = cases.iter().map(|(t, _)| t.clone()).collect();
    home.web.set(POST_PATH, post_page(&home, &links));
    home.ok(&["crawl"]);

    // A dry run discovers but sends nothing.
    let dry = home.ok(&["send", "--dry-run"]);
    assert!(dry.contains("would_send"), "{dry}");
    for (_, endpoint) in &cases {
        assert!(
            posts_to(&home, endpoint).is_empty(),
            "dry run posted to {endpoint}"
        );
    }
    assert!(home.ok(&["sent", "--json"]).trim() == "[]");

    home.web.clear_seen();
    // Case 23's URLs answer once: serve them afresh for the real run.
    rocks(&home);
    let out = home.ok(&["send"]);
    assert!(out.contains("sent"), "{out}");
    let post = home.post_url();
    for (target, endpoint) in &cases {
        let got = posts_to(&home, endpoint);
        assert_eq!(got.len(), 1, "{endpoint}: {out}");
        let form = got[0].form();
        assert!(
            form.contains(&("source".into(), post.clone()))
                && form.contains(&("target".into(), target.clone())),
            "{endpoint}: {form:?}"
        );
        assert!(
            !form.iter().any(|(k, _)| k == "query"),
            "the endpoint's query stays in its URL"
        );
    }
    for n in 1..=23 {
        let decoy = format!("/rocks/{n}/webmention/error");
        assert!(posts_to(&home, &decoy).is_empty(), "{decoy} got a ping");
    }
    assert!(
        posts_to(&home, "/rocks/template/webmention").is_empty(),
        "template links are never pinged"
    );
    assert_eq!(home.web.hits("/rocks/template"), 0, "not even fetched");

    // Unchanged: a second run sends nothing.
    home.web.clear_seen();
    let again = home.ok(&["send"]);
    assert!(again.contains("Nothing sent"), "{again}");
    assert!(home.web.seen_path("/rocks/1/webmention").is_empty());

    // `sent --json`: one record a link, in the contract's shape.
    let sent: Vec<serde_json::Value> = serde_json::from_str(&home.ok(&["sent", "--json"])).unwrap();
    assert_eq!(sent.len(), 23);
    let keys: Vec<&String> = sent[0].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "attempts",
            "endpoint",
            "http_status",
            "protocol",
            "reason",
            "sent_at",
            "source",
            "status",
            "target"
        ]
    );
    assert!(sent.iter().all(|r| {
        r["status"] == "sent"
            && r["protocol"] == "webmention"
            && r["http_status"]
                .as_i64()
                .is_some_and(|s| (200..300).contains(&s))
            && r["source"] == post.as_str()
    }));
    let log = home.log();
    assert_eq!(
        log.iter().filter(|d| d["kind"] == "send").count(),
        23,
        "every send is in the decision log"
    );
}

#[test]
fn updates_and_deletes_ping_what_the_post_links_to_and_linked_to() {
    let home = Home::new("");
    home.set_site_feed(&[
        (POST_PATH, "Update one"),
        ("/blog/2024/two/", "Update two"),
        ("/blog/2024/gone/", "Delete one"),
    ]);
    let web = &home.web;
    for path in [
        "/update/1",
        "/update/1/part/2",
        "/update/2",
        "/update/2/part/2",
        "/delete/1",
    ] {
        web.set(
            path,
            Fixture::html("").header("Link", &format!("<{path}/webmention>; rel=webmention")),
        );
        web.set(&format!("{path}/webmention"), Fixture::status(202));
    }
    let u = |p: &str| web.url(p);
    web.set(POST_PATH, post_page(&home, &[u("/update/1")]));
    web.set(
        "/blog/2024/two/",
        post_page(&home, &[u("/update/2"), u("/update/2/part/2")]),
    );
    web.set("/blog/2024/gone/", post_page(&home, &[u("/delete/1")]));
    home.ok(&["crawl"]);
    home.ok(&["send"]);
    let pings = |p: &str| posts_to(&home, &format!("{p}/webmention")).len();
    assert_eq!(
        [
            pings("/update/1"),
            pings("/update/2"),
            pings("/update/2/part/2"),
            pings("/delete/1")
        ],
        [1, 1, 1, 1]
    );
    // U1: a link added; U2: a link removed; D1: deleted — gone from the feed, and its page
    // answers 410.
    web.set(
        POST_PATH,
        post_page(&home, &[u("/update/1"), u("/update/1/part/2")]),
    );
    web.set("/blog/2024/two/", post_page(&home, &[u("/update/2")]));
    web.set("/blog/2024/gone/", Fixture::status(410));
    home.set_site_feed(&[(POST_PATH, "Update one"), ("/blog/2024/two/", "Update two")]);
    home.ok(&["crawl"]);
    home.ok(&["send"]);
    assert_eq!(pings("/update/1"), 2, "re-sent to the original link");
    assert_eq!(pings("/update/1/part/2"), 1, "sent to the new link");
    assert_eq!(pings("/update/2"), 2);
    assert_eq!(pings("/update/2/part/2"), 2, "the removed link is told too");
    assert_eq!(
        pings("/delete/1"),
        2,
        "a deleted post pings what it linked to"
    );
    home.ok(&["send"]);
    assert_eq!(pings("/delete/1"), 2, "once");
}

#[test]
fn pingback_by_header_and_link_to_pythons_xmlrpc_server_and_trackback_by_rdf() {
    let home = Home::new("");
    let calls = home.dir.path().join("calls.jsonl");
    let port = free_port();
    // Python's own XML-RPC server: an independent reading of what we send.
    let script = r#"
import json, sys
from xmlrpc.server import SimpleXMLRPCServer
from xmlrpc.client import Fault
calls = open(sys.argv[2], "a")
def ping(source, target):
    calls.write(json.dumps([source, target]) + "\n"); calls.flush()
    if target.endswith("/again"):
        raise Fault(0x30, "The pingback has already been registered.")
    return "Pingback registered."
server = SimpleXMLRPCServer(("127.0.0.1", int(sys.argv[1])), logRequests=False)
server.register_function(ping, "pingback.ping")
server.serve_forever()
"#;
    let mut python = std::process::Command::new("python3")
        .args(["-c", script, &port.to_string(), calls.to_str().unwrap()])
        .spawn()
        .unwrap();
    let rpc = format!("http://127.0.0.1:{port}/RPC2");
    assert!(eventually(10, || std::net::TcpStream::connect((
        "127.0.0.1",
        port
    ))
    .is_ok()));
    let web = &home.web;
    web.set(
        "/pb/header",
        Fixture::html("<p>hi</p>").header("X-Pingback", &rpc),
    );
    web.set(
        "/pb/link",
        Fixture::html(&format!(
            "<head><link rel=\"pingback\" href=\"{rpc}\" /></head>"
        )),
    );
    web.set(
        "/pb/again",
        Fixture::html(&format!(
            "<head><link rel=\"pingback\" href=\"{rpc}\" /></head>"
        )),
    );
    let tb_page = web.url("/tb/page");
    web.set(
        "/tb/page",
        Fixture::html(&format!(
            "<p>x</p><!-- <rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\" \
             xmlns:dc=\"http://purl.org/dc/elements/1.1/\" \
             xmlns:trackback=\"http://madskills.com/public/xml/rss/module/trackback/\">\
             <rdf:Description rdf:about=\"{tb_page}\" dc:identifier=\"{tb_page}\" dc:title=\"T\" \
             trackback:ping=\"{}\" /></rdf:RDF> -->",
            web.url("/tb/ping/7")
        )),
    );
    web.set(
        "/tb/ping/7",
        Fixture::with_type(
            "text/xml",
            b"<?xml version=\"1.0\"?><response><error>0</error></response>",
        ),
    );
    web.set("/nothing", Fixture::html("<p>No endpoints here.</p>"));
    let links = [
        "/pb/header",
        "/pb/link",
        "/pb/again",
        "/tb/page",
        "/nothing",
    ]
    .map(|p| web.url(p))
    .to_vec();
    web.set(POST_PATH, post_page(&home, &links));
    home.ok(&["crawl"]);
    home.ok(&["send"]);
    let _ = python.kill();
    let _ = python.wait();
    let post = home.post_url();
    let received: Vec<(String, String)> = std::fs::read_to_string(&calls)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for path in ["/pb/header", "/pb/link", "/pb/again"] {
        assert!(
            received.contains(&(post.clone(), web.url(path))),
            "{path}: {received:?}"
        );
    }
    let tb = posts_to(&home, "/tb/ping/7");
    assert_eq!(tb.len(), 1);
    assert!(tb[0].form().contains(&("url".into(), post.clone())));
    let sent: Vec<serde_json::Value> = serde_json::from_str(&home.ok(&["sent", "--json"])).unwrap();
    let of = |path: &str| {
        sent.iter()
            .find(|r| r["target"] == web.url(path).as_str())
            .unwrap_or_else(|| panic!("{path}: {sent:#?}"))
            .clone()
    };
    assert_eq!(of("/pb/header")["protocol"], "pingback");
    assert_eq!(of("/pb/header")["status"], "sent");
    assert_eq!(of("/pb/link")["endpoint"], rpc.as_str());
    assert_eq!(
        of("/pb/again")["status"],
        "sent",
        "fault 0x30 counts as sent"
    );
    assert_eq!(of("/tb/page")["protocol"], "trackback");
    assert_eq!(of("/tb/page")["status"], "sent");
    assert_eq!(of("/nothing")["status"], "no_endpoint");
    assert_eq!(of("/nothing")["protocol"], serde_json::Value::Null);
}

#[test]
fn one_backfeed_pings_another_which_verifies_it() {
    // B: a blog with its own backfeed daemon, advertised by its post's Link header.
    let b = Home::new("");
    b.ok(&["crawl"]);
    let daemon = b.serve();
    let b_post = b.post_url();
    b.web.set(
        POST_PATH,
        Fixture::html("<title>B's post</title><article class=\"h-entry\">B</article>").header(
            "Link",
            &format!("<{}>; rel=\"webmention\"", daemon.url("/webmention")),
        ),
    );
    // A: links to B's post from its own post, and sends.
    let a = Home::new("");
    a.web
        .set(POST_PATH, post_page(&a, std::slice::from_ref(&b_post)));
    a.ok(&["crawl"]);
    let out = a.ok(&["send"]);
    assert!(out.contains("sent") && out.contains("webmention"), "{out}");
    let sent: Vec<serde_json::Value> = serde_json::from_str(&a.ok(&["sent", "--json"])).unwrap();
    assert_eq!(sent[0]["http_status"], 201, "B answers 201 Created");
    assert!(eventually(10, || b.mentions().iter().any(|m| m["source"]
        == a.post_url().as_str()
        && m["status"] == "verified")));
}

#[test]
fn private_targets_and_excluded_domains_are_refused_and_send_runs_after_crawls() {
    let home = Home::new(
        "[fetch]\nallow_private_addresses = false\ntimeout_secs = 2\n\n[send]\nenabled = true\nexclude_domains = [\"skip.example\"]\n",
    );
    home.web.set(
        "/private/page",
        Fixture::html("").header("Link", "</private/webmention>; rel=webmention"),
    );
    let links = vec![
        home.web.url("/private/page"),
        "https://www.skip.example/x".into(),
    ];
    home.web.set(POST_PATH, post_page(&home, &links));
    let out = home.ok(&["crawl"]);
    assert!(out.contains("posts 1"), "{out}");
    let sent: Vec<serde_json::Value> = serde_json::from_str(&home.ok(&["sent", "--json"])).unwrap();
    assert_eq!(sent.len(), 2, "the crawl ended with a send: {sent:#?}");
    assert!(sent.iter().all(|r| r["status"] == "refused"), "{sent:#?}");
    assert!(sent.iter().any(|r| {
        r["reason"]
            .as_str()
            .unwrap()
            .contains("not a public address")
    }));
    assert!(sent.iter().any(|r| {
        r["reason"]
            .as_str()
            .unwrap()
            .contains("excluded domain skip.example")
    }));
    assert_eq!(home.web.hits("/private/page"), 0, "never fetched");
    assert_eq!(posts_to(&home, "/private/webmention").len(), 0);
}

#[test]
fn transient_failures_retry_and_refusals_are_final() {
    let home = Home::new("");
    let web = &home.web;
    for path in ["/flaky", "/refusing"] {
        web.set(
            path,
            Fixture::html("").header("Link", &format!("<{path}/webmention>; rel=webmention")),
        );
    }
    web.set_sequence(
        "/flaky/webmention",
        vec![Fixture::status(503), Fixture::status(202)],
    );
    web.set("/refusing/webmention", Fixture::status(400));
    let links = vec![web.url("/flaky"), web.url("/refusing")];
    web.set(POST_PATH, post_page(&home, &links));
    home.ok(&["crawl"]);
    home.ok(&["send"]);
    let status_of = |path: &str| -> serde_json::Value {
        let sent: Vec<serde_json::Value> =
            serde_json::from_str(&home.ok(&["sent", "--json"])).unwrap();
        sent.into_iter()
            .find(|r| r["target"] == web.url(path).as_str())
            .unwrap()
    };
    assert_eq!(status_of("/flaky")["status"], "retrying");
    assert_eq!(status_of("/refusing")["status"], "failed");
    assert_eq!(status_of("/refusing")["http_status"], 400);
    // Nothing is due before the backoff ends.
    home.ok(&["send"]);
    assert_eq!(posts_to(&home, "/flaky/webmention").len(), 1);
    // When it is due, the next run tries again, whether or not the post changed.
    let waiting = home
        .sql()
        .query_i64("SELECT COUNT(*) FROM jobs WHERE kind = 'send'", &[]);
    assert_eq!(
        waiting, 1,
        "the post waits in the one job queue for its retry"
    );
    home.sql().execute_batch(
        "UPDATE sends SET next_try = '2000-01-01T00:00:00Z';
         UPDATE jobs SET next_try = '2000-01-01T00:00:00Z' WHERE kind = 'send';",
    );
    home.ok(&["send"]);
    assert_eq!(posts_to(&home, "/flaky/webmention").len(), 2);
    assert_eq!(status_of("/flaky")["status"], "sent");
    assert_eq!(status_of("/flaky")["attempts"], 2);
    assert_eq!(
        posts_to(&home, "/refusing/webmention").len(),
        1,
        "a 4xx is final"
    );
}

#[test]
fn a_post_another_live_run_is_sending_is_left_to_it() {
    let home = Home::new("");
    let web = &home.web;
    web.set(
        "/target",
        Fixture::html("").header("Link", "</target/webmention>; rel=webmention"),
    );
    web.set("/target/webmention", Fixture::status(202));
    web.set(POST_PATH, post_page(&home, &[web.url("/target")]));
    home.ok(&["crawl"]);
    // A live process (this test) holds the post's send job, as serve's schedule would.
    home.sql().execute(
        "INSERT INTO jobs (kind, subject, next_try, lease_until, lease_owner)
         SELECT 'send', id, '2000-01-01T00:00:00Z', '2999-01-01T00:00:00Z', ?1 FROM posts",
        &[&format!("{}-test", std::process::id())],
    );
    let (code, _, err) = home.run_env(&["send"], &[("RUST_LOG", "backfeed=info")]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("another run is sending for this post"),
        "{err}"
    );
    assert_eq!(
        posts_to(&home, "/target/webmention").len(),
        0,
        "not pinged twice"
    );
    // Released, the next run sends, and leaves no job behind.
    home.sql().execute(
        "UPDATE jobs SET lease_until = NULL, lease_owner = NULL",
        &[],
    );
    home.ok(&["send"]);
    assert_eq!(posts_to(&home, "/target/webmention").len(), 1);
    let left = home
        .sql()
        .query_i64("SELECT COUNT(*) FROM jobs WHERE kind = 'send'", &[]);
    assert_eq!(left, 0);
}

#[test]
fn an_absurd_retry_after_is_a_long_wait_not_a_crash() {
    let home = Home::new("");
    let web = &home.web;
    web.set(
        "/busy",
        Fixture::html("").header("Link", "</busy/webmention>; rel=webmention"),
    );
    web.set(
        "/busy/webmention",
        Fixture::status(429).header("Retry-After", "9000000000000"),
    );
    web.set(POST_PATH, post_page(&home, &[web.url("/busy")]));
    home.ok(&["crawl"]);
    let (code, out, err) = home.run(&["send"]);
    assert_eq!(code, 0, "no panic: {out}\n{err}");
    let sent: Vec<serde_json::Value> = serde_json::from_str(&home.ok(&["sent", "--json"])).unwrap();
    assert_eq!(sent[0]["status"], "retrying", "{sent:?}");
    // The wait is clamped to thirty days, not taken as a date past the calendar's end.
    let next = home
        .sql()
        .query_text("SELECT next_try FROM sends", &[])
        .unwrap();
    let next = chrono::DateTime::parse_from_rfc3339(&next).unwrap();
    let days = (next.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_days();
    assert!((29..=30).contains(&days), "{next}");
}

#[test]
fn a_post_that_answers_404_while_its_feed_lists_it_pings_nothing() {
    let home = Home::new("");
    let web = &home.web;
    web.set(
        "/linked",
        Fixture::html("").header("Link", "</linked/webmention>; rel=webmention"),
    );
    web.set("/linked/webmention", Fixture::status(202));
    let page = post_page(&home, &[web.url("/linked")]);
    web.set(POST_PATH, page.clone());
    home.ok(&["crawl"]);
    home.ok(&["send"]);
    let pings = || posts_to(&home, "/linked/webmention").len();
    assert_eq!(pings(), 1);
    // A glitch: the page answers 404 on two runs while the feed still lists the post.
    web.set(POST_PATH, Fixture::status(404));
    home.ok(&["crawl"]);
    home.ok(&["send"]);
    home.ok(&["send"]);
    assert_eq!(pings(), 1, "a listed post is not deleted by a 404");
    // It comes back unchanged: nothing to send either.
    web.set(POST_PATH, page);
    home.ok(&["send"]);
    assert_eq!(pings(), 1, "unchanged since its last send");
    // Really deleted: gone from the feed, then 404 on two runs in a row.
    home.set_site_feed(&[]);
    web.set(POST_PATH, Fixture::status(404));
    home.web.set("/blog/other/", Fixture::html("<p>x</p>"));
    home.set_site_feed(&[("/blog/other/", "Another post")]);
    home.ok(&["crawl"]);
    home.ok(&["send"]);
    assert_eq!(pings(), 1, "one 404 is not yet a deletion");
    home.ok(&["send"]);
    assert_eq!(pings(), 2, "the deletion is told, once");
    home.ok(&["send"]);
    assert_eq!(pings(), 2);
}

#[test]
fn an_endpoint_that_moves_with_308_gets_the_same_post_and_a_302_is_not_success() {
    let home = Home::new("");
    let web = &home.web;
    for (page, status) in [("/moved", 308), ("/found", 302)] {
        web.set(
            page,
            Fixture::html("").header("Link", &format!("<{page}/webmention>; rel=webmention")),
        );
        web.set(
            &format!("{page}/webmention"),
            Fixture::status(status).header("Location", &format!("{page}/new-endpoint")),
        );
        web.set(&format!("{page}/new-endpoint"), Fixture::status(202));
    }
    web.set(
        POST_PATH,
        post_page(&home, &[web.url("/moved"), web.url("/found")]),
    );
    home.ok(&["crawl"]);
    home.ok(&["send"]);
    let moved = posts_to(&home, "/moved/new-endpoint");
    assert_eq!(moved.len(), 1, "the POST is repeated at the new place");
    let form = moved[0].form();
    assert!(
        form.iter()
            .any(|(k, v)| k == "target" && v == &web.url("/moved")),
        "{form:?}"
    );
    assert!(
        web.seen("/found/new-endpoint").is_empty(),
        "a 302 to a POST is not followed (as a GET or at all)"
    );
    let sent: Vec<serde_json::Value> = serde_json::from_str(&home.ok(&["sent", "--json"])).unwrap();
    let status = |t: &str| {
        sent.iter()
            .find(|r| r["target"] == web.url(t).as_str())
            .map(|r| r["status"].clone())
            .unwrap()
    };
    assert_eq!(status("/moved"), "sent");
    assert_eq!(status("/found"), "failed");
}

#[test]
fn a_send_killed_mid_run_resumes_and_pings_every_link_exactly_once() {
    let home = Home::new("");
    home.store_options("lease_secs = 3");
    let web = &home.web;
    let links: Vec<String> = (1..=3)
        .map(|n| {
            let page = format!("/link/{n}");
            web.set(
                &page,
                Fixture::html("").header("Link", &format!("<{page}/webmention>; rel=webmention")),
            );
            web.set(&format!("{page}/webmention"), Fixture::status(202));
            web.url(&page)
        })
        .collect();
    // The second link's page is slow: the run is killed while it waits for it.
    web.set(
        "/link/2",
        Fixture::html("")
            .header("Link", "</link/2/webmention>; rel=webmention")
            .delayed(1500),
    );
    web.set(POST_PATH, post_page(&home, &links));
    home.ok(&["crawl"]);
    let mut run = home
        .command()
        .arg("send")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Killed once the first link's outcome is recorded, while the run waits for the second.
    let db = home.sql();
    assert!(
        eventually(10, || db.query_i64("SELECT COUNT(*) FROM sends", &[]) == 1),
        "the run recorded its first link"
    );
    run.kill().unwrap();
    run.wait().unwrap();
    let pings = |n: u32| posts_to(&home, &format!("/link/{n}/webmention")).len();
    assert_eq!(pings(1), 1);
    assert_eq!(pings(3), 0, "killed before the third link");
    // The killed run's lease expires (it renews no more); then a new run takes the post over
    // and pings what has no outcome yet for this content.
    web.set(
        "/link/2",
        Fixture::html("").header("Link", "</link/2/webmention>; rel=webmention"),
    );
    assert!(
        eventually(15, || {
            let (_, _, err) = home.run_env(&["send"], &[("RUST_LOG", "backfeed=info")]);
            !err.contains("another run is sending")
        }),
        "the lease of the killed run expires"
    );
    assert_eq!([pings(1), pings(2), pings(3)], [1, 1, 1], "each link once");
    home.ok(&["send"]);
    assert_eq!([pings(1), pings(2), pings(3)], [1, 1, 1], "and done");
}

#[test]
fn one_posts_slow_link_does_not_hold_back_another_posts_pings() {
    let home = Home::new("");
    let web = &home.web;
    for (page, delay) in [("/slow-link", 1500), ("/quick-link", 0)] {
        web.set(
            page,
            Fixture::html("")
                .header("Link", &format!("<{page}/webmention>; rel=webmention"))
                .delayed(delay),
        );
        web.set(&format!("{page}/webmention"), Fixture::status(202));
    }
    // Two posts; the one with the slow link comes first.
    home.set_site_feed(&[("/blog/2024/quick/", "Quick"), (POST_PATH, "Slow")]);
    web.set(POST_PATH, post_page(&home, &[web.url("/slow-link")]));
    web.set(
        "/blog/2024/quick/",
        post_page(&home, &[web.url("/quick-link")]),
    );
    home.ok(&["crawl"]);
    home.ok(&["send"]);
    let arrivals = web.arrivals();
    let at = |path: &str| {
        arrivals
            .iter()
            .position(|p| p == path)
            .unwrap_or_else(|| panic!("{path} in {arrivals:?}"))
    };
    assert!(
        at("/quick-link/webmention") < at("/slow-link/webmention"),
        "the quick post's ping went out while the slow link was still loading: {arrivals:?}"
    );
}

#[test]
fn the_first_send_learns_the_posts_itself() {
    let home = Home::new("");
    let web = &home.web;
    web.set(
        "/first",
        Fixture::html("").header("Link", "</first/webmention>; rel=webmention"),
    );
    web.set("/first/webmention", Fixture::status(202));
    web.set(POST_PATH, post_page(&home, &[web.url("/first")]));
    // No crawl first: a blogger's very first command after setting up.
    let out = home.ok(&["send", "--dry-run"]);
    assert!(!out.contains("no post changed"), "{out}");
    assert!(out.contains(&web.url("/first")), "{out}");
    assert!(
        posts_to(&home, "/first/webmention").is_empty(),
        "a dry run sends nothing"
    );
    home.ok(&["send"]);
    assert_eq!(posts_to(&home, "/first/webmention").len(), 1);
}
