//! Processes serving one store, through the binary: `serve --roles`, `[server] instance_name`,
//! the live instances in `status` and `/metrics`, and (on PostgreSQL) two processes splitting
//! the work — a ping taken by an `http`-only process is verified by a `worker` process.
//! The fleet under faults is `tests/chaos.rs`.

mod support;
use std::process::Stdio;
use std::time::{Duration, Instant};
use support::*;

fn instances(home: &Home) -> Vec<serde_json::Value> {
    let status: serde_json::Value = serde_json::from_str(&home.ok(&["status", "--json"])).unwrap();
    status["instances"].as_array().cloned().unwrap_or_default()
}

#[test]
fn a_serving_process_is_listed_by_name_and_roles_until_it_stops() {
    let home = Home::new("");
    home.server_options("instance_name = \"web-1\"");
    let daemon = home.serve();
    let live = instances(&home);
    assert_eq!(live.len(), 1, "{live:?}");
    assert_eq!(live[0]["name"], "web-1");
    assert_eq!(live[0]["roles"], "http,worker,schedule");
    assert_eq!(live[0]["host"], backfeed::store::hostname());
    assert!(home.ok(&["status"]).contains("INSTANCE   web-1 on "));
    let metrics = daemon.text("/metrics");
    assert!(metrics.contains("backfeed_instances 1"), "{metrics}");
    assert!(
        metrics.contains("backfeed_instance_requests{instance=\"web-1\"}"),
        "{metrics}"
    );
    assert!(
        daemon.log_text().contains("instance=web-1"),
        "the log names the process"
    );
    assert_eq!(daemon.terminate(), 0);
    assert!(instances(&home).is_empty(), "a stopped process is not live");
    assert!(home.ok(&["status"]).contains("no live `serve` process"));
}

#[test]
fn an_unknown_role_is_a_usage_error_that_names_the_roles() {
    let home = Home::new("");
    let (code, _, err) = home.run(&["serve", "--roles", "http,cook"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("cook") && err.contains("worker"), "{err}");
}

/// On PostgreSQL: an `http`-only process acknowledges a ping and verifies nothing; a `worker`
/// process started beside it verifies it.
#[test]
fn an_http_process_and_a_worker_process_share_the_work() {
    if !on_postgres() {
        eprintln!("two processes on one store need PostgreSQL (BACKFEED_TEST_STORE=postgres)");
        return;
    }
    let home = Home::new("");
    home.server_options("instance_name = \"front\"");
    home.ok(&["crawl"]);
    let front = {
        let log = std::fs::File::create(home.dir.path().join("front.log")).unwrap();
        let mut child = home
            .command()
            .args(["serve", "--roles", "http"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", home.port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the http process listens"
            );
            assert!(child.try_wait().unwrap().is_none(), "the http process runs");
            std::thread::sleep(Duration::from_millis(25));
        }
        child
    };
    let source = home.linking_page("/split/1", "Split work");
    let answer = client()
        .post(format!("http://127.0.0.1:{}/webmention", home.port))
        .form(&[
            ("source", source.as_str()),
            ("target", home.post_url().as_str()),
        ])
        .send()
        .unwrap();
    assert!(answer.status().is_success(), "{}", answer.status());
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        home.status_of(&source),
        "pending",
        "no worker: nothing verified"
    );
    assert_eq!(
        home.web.hits("/split/1"),
        0,
        "an http process fetches no source"
    );

    let worker_config = home.dir.path().join("worker.toml");
    let config = std::fs::read_to_string(home.config_path()).unwrap();
    std::fs::write(
        &worker_config,
        config.replace("instance_name = \"front\"", "instance_name = \"back\""),
    )
    .unwrap();
    let back = home
        .command_with(&worker_config)
        .args(["serve", "--roles", "worker"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while home.status_of(&source) != "verified" {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the worker process verifies it"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let names: Vec<String> = instances(&home)
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["back", "front"]);
    for mut child in [front, back] {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Behind a load balancer a client's next request may reach another process: the ETag of the
/// same content is the same in every process with the same configuration (here: the process
/// after a restart), so the client still gets its 304.
#[test]
fn every_process_gives_the_same_etag_for_the_same_feed() {
    let home = Home::new("");
    home.ok(&["crawl"]);
    let etag = |daemon: &Daemon| -> String {
        client()
            .get(daemon.url("/mentions.atom"))
            .send()
            .unwrap()
            .headers()["etag"]
            .to_str()
            .unwrap()
            .to_string()
    };
    let first = home.serve();
    let tag = etag(&first);
    assert_eq!(first.terminate(), 0);
    let second = home.serve();
    assert_eq!(etag(&second), tag, "another process, the same ETag");
    let answer = client()
        .get(second.url("/mentions.atom"))
        .header("if-none-match", &tag)
        .send()
        .unwrap();
    assert_eq!(answer.status().as_u16(), 304);
}
