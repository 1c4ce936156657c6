//! The fleet under faults: three `serve` processes with different roles on a PostgreSQL cluster
//! of the test's own, a fixture web of slow source pages on 20 loopback hosts, a webhook
//! receiver, and webmentions sent over all three HTTP listeners — while one worker is killed
//! with SIGKILL every few seconds and started again, and PostgreSQL itself is restarted once.
//!
//! Then the promises of the contract's "Many processes on one PostgreSQL" are checked from
//! outside: every acknowledged ping verified; one mention per (source, target); no source
//! fetched by two processes at once; never more than `per_host` requests at once to one host;
//! each webhook event delivered once (a repeat only after a kill, with the same delivery id);
//! each schedule tick run once.
//!
//! It needs root (the cluster runs as the `postgres` user; `initdb` refuses root) and
//! PostgreSQL 15's binaries. The short form runs in CI (`CHAOS_PINGS`, default 1,000, at
//! `CHAOS_RATE` pings a second, default 200, more than the 20 hosts can serve at `per_host` = 2
//! with pages that take 250 ms, so the limits bind); `CHAOS_PINGS=5000` is the full one.

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
const SOURCE_HOSTS: usize = 20;
const PER_HOST: usize = 2;
const POST_PATH: &str = "/blog/2024/hello/";

/// What the fixture web and the webhook receiver saw.
#[derive(Default)]
struct Seen {
    in_flight_by_host: HashMap<String, usize>,
    max_by_host: HashMap<String, usize>,
    in_flight_by_page: HashMap<String, usize>,
    max_by_page: usize,
    /// Pages fetched by two at once (none, when the fleet keeps its promise).
    doubled: Vec<String>,
    page_fetches: usize,
    feed_fetches: usize,
    /// Webhook deliveries: id → (how many times, the mention's source).
    deliveries: HashMap<String, (usize, String)>,
}

type Shared = Arc<Mutex<Seen>>;

/// The fixture web: the blog (feed and post) and the webhook receiver on 127.0.0.1, source
/// pages on 127.0.0.2 … 127.0.0.21, all on one port; each page answers after `delay`.
fn start_web(port: u16, delay: Duration) -> Shared {
    let seen: Shared = Arc::default();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let state = seen.clone();
    support::in_background(async move {
        for host in 1..=SOURCE_HOSTS + 1 {
            let address: SocketAddr = format!("127.0.0.{host}:{port}").parse().unwrap();
            let listener = tokio::net::TcpListener::bind(address).await.unwrap();
            let state = state.clone();
            let app =
                axum::Router::new().fallback(move |req: axum::http::Request<axum::body::Body>| {
                    answer(state.clone(), req, port, delay)
                });
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        }
        ready_tx.send(()).unwrap();
        std::future::pending::<()>().await;
    });
    ready_rx.recv().unwrap();
    seen
}

async fn answer(
    seen: Shared,
    req: axum::http::Request<axum::body::Body>,
    port: u16,
    delay: Duration,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let host = req
        .headers()
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .split(':')
        .next()
        .unwrap_or("")
        .to_string();
    let path = req.uri().path().to_string();
    let post = format!("http://127.0.0.1:{port}{POST_PATH}");
    if path == "/hook" {
        let id = req
            .headers()
            .get("x-backfeed-delivery")
            .and_then(|h| h.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body = axum::body::to_bytes(req.into_body(), 1 << 20)
            .await
            .unwrap_or_default();
        let event: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let source = event["source"]
            .as_str()
            .or_else(|| event["mention"]["wm-source"].as_str())
            .or_else(|| event["mention"]["url"].as_str())
            .unwrap_or("")
            .to_string();
        let mut s = seen.lock().unwrap();
        let entry = s.deliveries.entry(id).or_insert((0, source));
        entry.0 += 1;
        return "ok".into_response();
    }
    if path == "/blog/feed.xml" {
        seen.lock().unwrap().feed_fetches += 1;
        let feed = format!(
            r#"<?xml version="1.0"?><rss version="2.0"><channel><title>Chaos blog</title><link>http://127.0.0.1:{port}/blog/</link><description>d</description><item><title>Hello</title><link>{post}</link><guid>{post}</guid></item></channel></rss>"#
        );
        return ([("content-type", "application/rss+xml")], feed).into_response();
    }
    if !path.starts_with("/p/") {
        // The blog's own pages (the post, its home page read by a crawl).
        return axum::response::Html("<title>Hello</title><p>The post.</p>").into_response();
    }
    {
        let mut s = seen.lock().unwrap();
        s.page_fetches += 1;
        let now = {
            let n = s.in_flight_by_host.entry(host.clone()).or_default();
            *n += 1;
            *n
        };
        let max = s.max_by_host.entry(host.clone()).or_default();
        *max = (*max).max(now);
        let page_now = {
            let n = s.in_flight_by_page.entry(path.clone()).or_default();
            *n += 1;
            *n
        };
        s.max_by_page = s.max_by_page.max(page_now);
        if page_now > 1 {
            s.doubled.push(format!(
                "{host}{path} at {:?}",
                std::time::SystemTime::now()
            ));
        }
    }
    // A request whose client went away (a killed worker) ends here too: its handler is
    // dropped mid-sleep, and the guard still counts it out.
    let _out = InFlight {
        seen: seen.clone(),
        host,
        page: path.clone(),
    };
    tokio::time::sleep(delay).await;
    axum::response::Html(format!(
        r#"<!doctype html><title>A page</title><article class="h-entry"><p class="e-content">Read <a href="{post}">this post</a>.</p></article>"#
    ))
    .into_response()
}

/// One source fetch in flight at the fixture web, counted out when it ends however it ends.
struct InFlight {
    seen: Shared,
    host: String,
    page: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut s = self.seen.lock().unwrap();
        *s.in_flight_by_host.get_mut(&self.host).unwrap() -= 1;
        *s.in_flight_by_page.get_mut(&self.page).unwrap() -= 1;
    }
}

/// A PostgreSQL cluster of the test's own, run as the `postgres` user, that can be restarted.
struct Cluster {
    dir: tempfile::TempDir,
    port: u16,
}

impl Cluster {
    fn as_postgres(dir: &Path, program: &str, args: &[&str]) -> std::process::Output {
        Command::new("runuser")
            .args(["-u", "postgres", "--", &format!("{PG_BIN}/{program}")])
            .args(args)
            .current_dir(dir)
            .output()
            .expect("runuser runs")
    }

    fn start() -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("chown")
            .args(["-R", "postgres:postgres", dir.path().to_str().unwrap()])
            .status()
            .unwrap();
        assert!(status.success(), "chown to postgres");
        let data = dir.path().join("data");
        let init = Self::as_postgres(
            dir.path(),
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        );
        assert!(
            init.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&init.stderr)
        );
        let cluster = Cluster {
            port: support::free_port(),
            dir,
        };
        cluster.pg_ctl("start");
        cluster
    }

    fn pg_ctl(&self, action: &str) {
        let data = self.dir.path().join("data");
        let options = format!(
            "-p {} -k {} -h 127.0.0.1 -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("postgres.log");
        let out = Self::as_postgres(
            self.dir.path(),
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-o",
                &options,
                "-l",
                log.to_str().unwrap(),
                "-m",
                "fast",
                "-w",
                action,
            ],
        );
        assert!(
            out.status.success(),
            "pg_ctl {action}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = Self::as_postgres(
            self.dir.path(),
            "pg_ctl",
            &["-D", data.to_str().unwrap(), "-m", "immediate", "stop"],
        );
    }
}

/// One `serve` process of the fleet.
struct Process {
    name: String,
    roles: &'static str,
    port: u16,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    store_url: String,
}

impl Process {
    fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_backfeed"))
            .args([
                "--config",
                self.config.to_str().unwrap(),
                "serve",
                "--roles",
                self.roles,
            ])
            .env("CHAOS_STORE_URL", &self.store_url)
            .env("RUST_LOG", "backfeed=info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill(); // SIGKILL
            let _ = child.wait();
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if child.try_wait().unwrap().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn listening(&self) -> bool {
        std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
    }
}

fn write_config(dir: &Path, name: &str, port: u16, web_port: u16) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            r#"[site]
base_url = "http://127.0.0.1:{web_port}/blog/"
feeds = ["http://127.0.0.1:{web_port}/blog/feed.xml"]
[store]
url_env = "CHAOS_STORE_URL"
pool_size = 8
lease_secs = 3
[server]
listen = "127.0.0.1:{port}"
public_url = "http://127.0.0.1:{port}/"
metrics_listen = ""
instance_name = "{name}"
rate_limit_per_client = 0
rate_limit_per_source_host = 0
max_connections_per_client = 0
[schedule]
crawl = "*/3 * * * * *"
reverify = "0 0 0 1 1 *"
[fetch]
allow_private_addresses = true
per_host = {PER_HOST}
per_host_per_minute = 0
concurrency = 16
timeout_secs = 5
[[notify.webhook]]
url = "http://127.0.0.1:{web_port}/hook"
"#
        ),
    )
    .unwrap();
    path
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn the_fleet_keeps_every_promise_while_workers_die_and_postgresql_restarts() {
    let required = std::env::var("BACKFEED_REQUIRE_POSTGRES").is_ok_and(|v| v == "1");
    let can_run = unsafe { libc::geteuid() } == 0 && Path::new(PG_BIN).join("initdb").exists();
    if !can_run {
        assert!(!required, "the chaos test needs root and {PG_BIN}");
        eprintln!("chaos test skipped: it needs root and PostgreSQL 15 in {PG_BIN}");
        return;
    }
    let pings = env_number("CHAOS_PINGS", 1_000);
    let rate = env_number("CHAOS_RATE", 200).max(1);
    let cluster = Cluster::start();
    let work = tempfile::Builder::new().prefix("chaos").tempdir().unwrap();
    let web_port = support::free_port();
    let seen = start_web(web_port, Duration::from_millis(250));

    // Three processes: one never killed (http, schedule), one killed again and again (http,
    // worker), one with every role.
    let mut fleet: Vec<Process> = [
        ("steady", "http,schedule"),
        ("fragile", "http,worker"),
        ("full", "http,worker,schedule"),
    ]
    .into_iter()
    .map(|(name, roles)| {
        let port = support::free_port();
        Process {
            name: name.into(),
            roles,
            port,
            config: write_config(work.path(), name, port, web_port),
            log: work.path().join(format!("{name}.log")),
            child: None,
            store_url: cluster.url(),
        }
    })
    .collect();
    for p in &mut fleet {
        p.start();
    }
    let started = Instant::now();
    for p in &fleet {
        while !p.listening() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{} listens",
                p.name
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let ports: Vec<u16> = fleet.iter().map(|p| p.port).collect();
    let fleet = Arc::new(Mutex::new(fleet));

    // The client: pings at `rate` a second over the three listeners; one refused by a dead
    // process is sent to the next listener, as a sender's retry would.
    let acknowledged: Arc<Mutex<Vec<String>>> = Arc::default();
    let sent = Arc::new(AtomicUsize::new(0));
    let senders: Vec<_> = (0..8)
        .map(|thread| {
            let (acknowledged, sent, ports) = (acknowledged.clone(), sent.clone(), ports.clone());
            std::thread::spawn(move || {
                let client = support::client_builder()
                    .timeout(Duration::from_secs(10))
                    .build()
                    .unwrap();
                let begin = Instant::now();
                loop {
                    let n = sent.fetch_add(1, Ordering::SeqCst);
                    if n >= pings {
                        return;
                    }
                    let due = Duration::from_secs_f64(n as f64 / rate as f64);
                    if let Some(wait) = due.checked_sub(begin.elapsed()) {
                        std::thread::sleep(wait);
                    }
                    let host = 2 + n % SOURCE_HOSTS;
                    let source = format!("http://127.0.0.{host}:{web_port}/p/{n}.html");
                    let target = format!("http://127.0.0.1:{web_port}{POST_PATH}");
                    for attempt in 0..30 {
                        let port = ports[(n + thread + attempt) % ports.len()];
                        let answer = client
                            .post(format!("http://127.0.0.1:{port}/webmention"))
                            .form(&[("source", &source), ("target", &target)])
                            .send();
                        if answer.as_ref().is_ok_and(|a| a.status().is_success()) {
                            acknowledged.lock().unwrap().push(source);
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            })
        })
        .collect();

    // The faults: the fragile worker killed every 2 s and started again half a second later;
    // PostgreSQL restarted once, halfway through the sending.
    let kills = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let killer = {
        let (fleet, kills, done) = (fleet.clone(), kills.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_secs(2));
                if done.load(Ordering::SeqCst) {
                    return;
                }
                fleet.lock().unwrap()[1].kill();
                kills.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(500));
                fleet.lock().unwrap()[1].start();
            }
        })
    };
    while sent.load(Ordering::SeqCst) < pings / 2 {
        std::thread::sleep(Duration::from_millis(50));
    }
    cluster.pg_ctl("restart");
    let restarted_at = Instant::now();
    for sender in senders {
        sender.join().unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() >= pings * 9 / 10,
        "most pings acknowledged: {} of {pings}",
        acknowledged.len()
    );

    // Every acknowledged ping verified, within a generous deadline.
    let store = backfeed::store::testing::Sql::open(&backfeed::store::Location::Postgres {
        url: cluster.url(),
        pool_size: 2,
    });
    let deadline = Instant::now() + Duration::from_secs(180);
    let verified = loop {
        let verified = store.query_i64(
            "SELECT COUNT(*) FROM mentions WHERE status = 'verified'",
            &[],
        );
        if verified as usize >= acknowledged.len() || Instant::now() > deadline {
            break verified;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    // Let the last deliveries go out (a retry after a kill or the restart waits its backoff),
    // then stop the fleet.
    let deadline = Instant::now() + Duration::from_secs(90);
    while Instant::now() < deadline
        && (store.query_i64(
            "SELECT COUNT(*) FROM deliveries WHERE status = 'pending'",
            &[],
        ) > 0
            || (seen.lock().unwrap().deliveries.len() as i64) < verified)
    {
        std::thread::sleep(Duration::from_millis(200));
    }
    done.store(true, Ordering::SeqCst);
    killer.join().unwrap();
    let elapsed = started.elapsed();
    for p in fleet.lock().unwrap().iter_mut() {
        p.stop();
    }
    let logs = || {
        fleet
            .lock()
            .unwrap()
            .iter()
            .map(|p| {
                let text = std::fs::read_to_string(&p.log).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(15).collect();
                format!(
                    "--- {} ---\n{}",
                    p.name,
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };

    let unverified: Vec<String> = acknowledged
        .iter()
        .filter(|source| {
            store
                .query_text(
                    "SELECT MAX(status) FROM mentions WHERE source = ?1",
                    &[source.as_str()],
                )
                .as_deref()
                != Some("verified")
        })
        .take(5)
        .cloned()
        .collect();
    assert!(
        unverified.is_empty(),
        "every acknowledged ping verified ({verified} of {}); not: {unverified:?}\n{}",
        acknowledged.len(),
        logs()
    );
    let pairs = store.query_i64("SELECT COUNT(*) FROM (SELECT source, target_key FROM mentions GROUP BY source, target_key HAVING COUNT(*) > 1) twice", &[]);
    assert_eq!(pairs, 0, "one mention per (source, target)");
    let seen = seen.lock().unwrap();
    assert_eq!(
        seen.max_by_page, 1,
        "no source fetched by two at once: {:?}",
        seen.doubled
    );
    let busiest = seen.max_by_host.values().copied().max().unwrap_or(0);
    assert!(
        busiest <= PER_HOST,
        "at most per_host = {PER_HOST} at once on one host: {:?}",
        seen.max_by_host
    );
    assert!(
        seen.page_fetches >= acknowledged.len(),
        "every page fetched"
    );

    // Webhooks: one delivery id per published mention; an id repeats only after a kill.
    let mut ids_by_source: HashMap<&str, usize> = HashMap::new();
    for (_, source) in seen.deliveries.values() {
        *ids_by_source.entry(source.as_str()).or_default() += 1;
    }
    let twice: Vec<_> = ids_by_source
        .iter()
        .filter(|(_, n)| **n > 1)
        .take(5)
        .collect();
    assert!(twice.is_empty(), "one event, one delivery id: {twice:?}");
    assert!(
        seen.deliveries.len() as i64 >= verified,
        "every published mention delivered: {} of {verified}; notifications {:?}, deliveries {:?}, jobs {:?}",
        seen.deliveries.len(),
        store.rows(
            "SELECT event, fanned_out, COUNT(*) FROM notifications GROUP BY event, fanned_out"
        ),
        store.rows("SELECT status, COUNT(*) FROM deliveries GROUP BY status"),
        store.rows("SELECT kind, COUNT(*), MIN(next_try), MAX(attempts) FROM jobs GROUP BY kind"),
    );
    let repeated = seen.deliveries.values().filter(|(n, _)| *n > 1).count();
    let kills = kills.load(Ordering::SeqCst);
    assert!(kills >= 2, "the worker was killed along the way ({kills})");
    assert!(
        repeated <= kills * 16,
        "{repeated} repeats after {kills} kills"
    );

    // Schedules: each crawl tick ran once across the fleet (two processes have the role): the
    // feed is fetched once per tick, plus the two crawls at start.
    let ticks = elapsed.as_secs() as usize / 3 + 2;
    assert!(
        seen.feed_fetches <= ticks + 2,
        "{} feed fetches for {ticks} ticks",
        seen.feed_fetches
    );
    let claimed = store.query_i64(
        "SELECT COUNT(*) FROM schedule_claims WHERE schedule = 'crawl'",
        &[],
    );
    assert!(claimed >= 2, "ticks were claimed ({claimed})");
    eprintln!(
        "chaos: {} pings acknowledged of {pings}, {verified} verified in {:.1} s; {kills} kills, PostgreSQL restarted {:.1} s before the end; {} deliveries ({repeated} repeated); busiest host {busiest} at once; {} feed fetches for {ticks} ticks",
        acknowledged.len(),
        elapsed.as_secs_f64(),
        restarted_at.elapsed().as_secs_f64(),
        seen.deliveries.len(),
        seen.feed_fetches,
    );
}
