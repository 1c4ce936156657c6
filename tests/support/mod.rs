//! Test harness: a fixture web served on 127.0.0.1 by the test itself, a temporary backfeed
//! home (config + store) and helpers that run the real binary, as a user would.
#![allow(dead_code)]

use axum::body::Body;
use axum::http::{HeaderMap, Request, Response, StatusCode};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How the fixture web answers one path.
#[derive(Clone, Debug)]
pub struct Fixture {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Send headers and the first bytes, then stall forever.
    pub stall: bool,
    /// Answer 304 when If-None-Match equals this.
    pub etag: Option<String>,
    /// Wait this long before answering (a slow page, to catch work in flight).
    pub delay_ms: u64,
}

impl Fixture {
    pub fn html(body: &str) -> Fixture {
        Fixture::with_type("text/html; charset=utf-8", body.as_bytes())
    }

    pub fn with_type(content_type: &str, body: &[u8]) -> Fixture {
        Fixture {
            status: 200,
            headers: vec![("content-type".into(), content_type.into())],
            body: body.to_vec(),
            stall: false,
            etag: None,
            delay_ms: 0,
        }
    }

    pub fn status(status: u16) -> Fixture {
        Fixture {
            status,
            ..Fixture::html("")
        }
    }

    pub fn redirect(to: &str) -> Fixture {
        Fixture {
            status: 302,
            headers: vec![("location".into(), to.into())],
            ..Fixture::html("")
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Fixture {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn etag(mut self, etag: &str) -> Fixture {
        self.etag = Some(etag.into());
        self
    }

    pub fn delayed(mut self, ms: u64) -> Fixture {
        self.delay_ms = ms;
        self
    }
}

/// One request the fixture web saw.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: HeaderMap,
    pub status: u16,
    pub body: Vec<u8>,
}

impl Seen {
    /// The body as form fields (a POSTed webmention, trackback).
    pub fn form(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(&self.body).into_owned().collect()
    }
}

#[derive(Default)]
struct WebState {
    pages: HashMap<String, Fixture>,
    sequences: HashMap<String, Vec<Fixture>>,
    seen: Vec<Seen>,
    /// Paths of requests as they arrive (before any delay), in order.
    arrived: Vec<String>,
    delay_ms: u64,
    in_flight: usize,
    max_in_flight: usize,
}

/// Runs `serve` on a runtime and a thread of its own, so that a fixture server answers async
/// tests and tests that block on the binary alike.
pub fn in_background(serve: impl std::future::Future<Output = ()> + Send + 'static) {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(serve)
    });
}

/// A small web of fixture pages on 127.0.0.1.
#[derive(Clone)]
pub struct FixtureWeb {
    pub addr: SocketAddr,
    state: Arc<Mutex<WebState>>,
}

impl FixtureWeb {
    /// Starts serving on an ephemeral port, on its own thread and runtime (so it serves both
    /// async tests and tests that block on the binary).
    pub fn start() -> FixtureWeb {
        let state: Arc<Mutex<WebState>> = Arc::default();
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let shared = state.clone();
        in_background(async move {
            let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
            let app =
                axum::Router::new().fallback(move |req: Request<Body>| answer(shared.clone(), req));
            axum::serve(listener, app).await.unwrap();
        });
        FixtureWeb { addr, state }
    }

    /// `http://127.0.0.1:PORT` + path.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn set(&self, path: &str, fixture: Fixture) {
        self.state
            .lock()
            .unwrap()
            .pages
            .insert(path.to_string(), fixture);
    }

    /// Answers `path` with each fixture in turn, the last one from then on.
    pub fn set_sequence(&self, path: &str, fixtures: Vec<Fixture>) {
        self.state
            .lock()
            .unwrap()
            .sequences
            .insert(path.to_string(), fixtures);
    }

    /// Requests seen for `path` whatever their query string.
    pub fn seen_path(&self, path: &str) -> Vec<Seen> {
        self.state
            .lock()
            .unwrap()
            .seen
            .iter()
            .filter(|s| s.path.split('?').next() == Some(path))
            .cloned()
            .collect()
    }

    pub fn remove(&self, path: &str) {
        self.state.lock().unwrap().pages.remove(path);
    }

    /// Requests seen for `path` (query included), oldest first.
    pub fn seen(&self, path: &str) -> Vec<Seen> {
        self.state
            .lock()
            .unwrap()
            .seen
            .iter()
            .filter(|s| s.path == path)
            .cloned()
            .collect()
    }

    pub fn hits(&self, path: &str) -> usize {
        self.seen(path).len()
    }

    /// The most requests this web was answering at once.
    /// Every path requested so far, in the order the requests arrived.
    pub fn arrivals(&self) -> Vec<String> {
        self.state.lock().unwrap().arrived.clone()
    }

    /// Requests for `path` that have arrived, answered or not yet (a delayed fixture's).
    pub fn arrived(&self, path: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .arrived
            .iter()
            .filter(|p| *p == path)
            .count()
    }

    pub fn max_in_flight(&self) -> usize {
        self.state.lock().unwrap().max_in_flight
    }

    /// Delays every answer by `ms` (a slow web, to catch work in flight).
    pub fn set_delay(&self, ms: u64) {
        self.state.lock().unwrap().delay_ms = ms;
    }

    pub fn clear_seen(&self) {
        self.state.lock().unwrap().seen.clear();
    }
}

async fn answer(state: Arc<Mutex<WebState>>, req: Request<Body>) -> Response<Body> {
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let method = req.method().to_string();
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20)
        .await
        .map(|b| b.to_vec())
        .unwrap_or_default();
    let req = Request::from_parts(parts, ());
    let delay = {
        let mut s = state.lock().unwrap();
        s.arrived
            .push(path.split('?').next().unwrap_or("").to_string());
        s.in_flight += 1;
        s.max_in_flight = s.max_in_flight.max(s.in_flight);
        s.delay_ms
    };
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    state.lock().unwrap().in_flight -= 1;
    // An exact path-and-query fixture first, else the path's (APIs vary their queries).
    let fixture = {
        let mut s = state.lock().unwrap();
        let bare = path.split('?').next().unwrap_or("").to_string();
        let from_sequence = [path.as_str(), bare.as_str()].into_iter().find_map(|key| {
            let seq = s.sequences.get_mut(key)?;
            Some(if seq.len() > 1 {
                seq.remove(0)
            } else {
                seq[0].clone()
            })
        });
        from_sequence.or_else(|| s.pages.get(&path).or_else(|| s.pages.get(&bare)).cloned())
    };
    let Some(f) = fixture else {
        state.lock().unwrap().seen.push(Seen {
            method,
            path,
            headers: req.headers().clone(),
            status: 404,
            body,
        });
        return Response::builder()
            .status(404)
            .body(Body::from("not found"))
            .unwrap();
    };
    if f.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(f.delay_ms)).await;
    }
    let not_modified = f.etag.as_deref().is_some_and(|etag| {
        req.headers()
            .get("if-none-match")
            .and_then(|v| v.to_str().ok())
            == Some(etag)
    });
    let status = if not_modified { 304 } else { f.status };
    state.lock().unwrap().seen.push(Seen {
        method,
        path,
        headers: req.headers().clone(),
        status,
        body,
    });
    let mut builder = Response::builder().status(StatusCode::from_u16(status).unwrap());
    for (k, v) in &f.headers {
        builder = builder.header(k, v);
    }
    if let Some(etag) = &f.etag {
        builder = builder.header("etag", etag);
    }
    if not_modified {
        return builder.body(Body::empty()).unwrap();
    }
    if f.stall {
        let first = f.body.clone();
        let stream = futures_util::stream::unfold(Some(first), |state| async move {
            match state {
                Some(bytes) => Some((
                    Ok::<_, std::io::Error>(axum::body::Bytes::from(bytes)),
                    None,
                )),
                None => {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    None
                }
            }
        });
        return builder.body(Body::from_stream(stream)).unwrap();
    }
    builder.body(Body::from(f.body)).unwrap()
}

/// A temporary backfeed home: a config file and a store.
pub struct Home {
    pub dir: tempfile::TempDir,
    pub web: FixtureWeb,
    pub port: u16,
    /// The home's PostgreSQL database when the suite runs on PostgreSQL
    /// (`BACKFEED_TEST_STORE=postgres`); `None`: a SQLite file in `dir`.
    pub postgres: Option<backfeed::store::testing::TestDatabase>,
}

/// The variable the config's `[store] url_env` names on PostgreSQL.
const STORE_URL_ENV: &str = "BACKFEED_TEST_STORE_URL";

/// Whether this run of the suites puts its stores on PostgreSQL (`BACKFEED_TEST_STORE=postgres`;
/// the default is SQLite).
pub fn on_postgres() -> bool {
    std::env::var("BACKFEED_TEST_STORE").is_ok_and(|v| v == "postgres")
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub const POST_PATH: &str = "/blog/2024/hello/";

impl Home {
    /// A home whose site lives on the fixture web at `/blog/`, with one post in its feed, and
    /// `extra` TOML appended to the config.
    pub fn new(extra: &str) -> Home {
        let web = FixtureWeb::start();
        let home = Home {
            dir: tempfile::tempdir().unwrap(),
            web,
            port: free_port(),
            postgres: on_postgres().then(|| {
                backfeed::store::testing::TestDatabase::create("home")
                    .expect("BACKFEED_TEST_STORE=postgres needs BACKFEED_TEST_DATABASE_URL")
            }),
        };
        home.set_site_feed(&[(POST_PATH, "Hello, world")]);
        home.web.set(
            POST_PATH,
            Fixture::html("<title>Hello, world</title><p>The post.</p>"),
        );
        home.write_config(extra);
        home
    }

    pub fn write_config(&self, extra: &str) {
        let config = format!(
            r#"
[site]
base_url = "{base}"
feeds = ["{feed}"]
title = "Fixture blog"
{server}
{extra}
"#,
            base = self.web.url("/blog/"),
            feed = self.web.url("/blog/feed.xml"),
            server = self.store_and_server(),
        );
        let config = if config.contains("[fetch]") {
            config
        } else {
            format!(
                "{config}\n[fetch]\nallow_private_addresses = true\ntimeout_secs = 2\nper_host_per_minute = 0\n"
            )
        };
        std::fs::write(self.config_path(), config).unwrap();
    }

    /// The `[store]` and `[server]` tables of this home's config (its store, its port).
    pub fn store_and_server(&self) -> String {
        format!(
            "\n[store]\n{store}\n\n[server]\nlisten = \"127.0.0.1:{port}\"\nmetrics_listen = \"\"\npublic_url = \"http://127.0.0.1:{port}/\"\n",
            store = self.store_line(),
            port = self.port
        )
    }

    /// The `[store]` line of this home's store (a SQLite file, or PostgreSQL's variable).
    pub fn store_line(&self) -> String {
        match self.postgres {
            Some(_) => format!("url_env = \"{STORE_URL_ENV}\""),
            None => format!(
                "path = \"{}\"",
                self.dir.path().join("backfeed.db").display()
            ),
        }
    }

    /// Adds `[server]` options (e.g. rate limits) to the current config; a key already there
    /// (`metrics_listen`) takes the new value.
    pub fn server_options(&self, lines: &str) {
        let mut config = std::fs::read_to_string(self.config_path()).unwrap();
        for line in lines.lines() {
            let key = line.split('=').next().unwrap_or("").trim();
            if let Some(old) = config
                .lines()
                .find(|l| l.split('=').next().unwrap_or("").trim() == key)
                .map(str::to_string)
            {
                config = config.replacen(&old, "", 1);
            }
        }
        std::fs::write(
            self.config_path(),
            config.replacen("public_url", &format!("{lines}\npublic_url"), 1),
        )
        .unwrap();
    }

    /// For a test that kills a daemon and starts another: on SQLite the new `serve` holds the
    /// store's lock and takes its predecessor's leases back at once; on PostgreSQL (many
    /// processes, no such lock) they are taken over as they expire, so the leases are short.
    pub fn leases_for_restarts(&self) {
        if self.postgres.is_some() {
            self.store_options("lease_secs = 3");
        }
    }

    /// Adds `[store]` options (e.g. `lease_secs = 3`) to the current config.
    pub fn store_options(&self, lines: &str) {
        let config = std::fs::read_to_string(self.config_path()).unwrap();
        std::fs::write(
            self.config_path(),
            config.replacen("[store]\n", &format!("[store]\n{lines}\n"), 1),
        )
        .unwrap();
    }

    /// Turns the receivers' rate limits off (bursts from one test client).
    pub fn without_rate_limits(&self) {
        self.server_options(
            "rate_limit_per_client = 0\nrate_limit_per_source_host = 0\nmax_connections_per_client = 0",
        );
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("backfeed.toml")
    }

    pub fn post_url(&self) -> String {
        self.web.url(POST_PATH)
    }

    /// Serves the site's own RSS feed listing `posts` (path, title), published 2024-05-01.
    pub fn set_site_feed(&self, posts: &[(&str, &str)]) {
        self.set_site_feed_dated(posts, "Wed, 01 May 2024 08:00:00 GMT");
    }

    /// Serves the site's own RSS feed listing `posts` (path, title) published at `date`.
    pub fn set_site_feed_dated(&self, posts: &[(&str, &str)], date: &str) {
        let items: String = posts
            .iter()
            .map(|(path, title)| {
                format!("<item><title>{title}</title><link>{}</link><guid>{}</guid><pubDate>{date}</pubDate></item>", self.web.url(path), self.web.url(path))
            })
            .collect();
        let rss = format!(
            r#"<?xml version="1.0"?><rss version="2.0"><channel><title>Fixture blog</title><link>{}</link><description>d</description>{items}</channel></rss>"#,
            self.web.url("/blog/")
        );
        self.web.set(
            "/blog/feed.xml",
            Fixture::with_type("application/rss+xml", rss.as_bytes()),
        );
    }

    /// Serves a source page at `path` whose body is `html`; returns its URL.
    pub fn source(&self, path: &str, html: &str) -> String {
        self.web.set(path, Fixture::html(html));
        self.web.url(path)
    }

    /// A page that links to the post, WordPress style.
    pub fn linking_page(&self, path: &str, words: &str) -> String {
        let html = self.linking_html(words);
        self.source(path, &html)
    }

    /// The HTML of [`Home::linking_page`].
    pub fn linking_html(&self, words: &str) -> String {
        format!(
            "<html><head><title>{words}</title></head><body><article><p>{words} — read <a href=\"{}\">this post</a> today.</p></article></body></html>",
            self.post_url()
        )
    }

    /// A source at `path` whose first fetch is slow (1.5 s) and shows `before`; every later
    /// fetch shows `after` (its author edited it meanwhile). Returns its URL.
    pub fn edited_during_fetch(&self, path: &str, before: &str, after: &str) -> String {
        self.web.set_sequence(
            path,
            vec![
                Fixture::html(&self.linking_html(before)).delayed(1500),
                Fixture::html(&self.linking_html(after)),
            ],
        );
        self.web.url(path)
    }

    /// The real binary with this home's config (and its store's URL on PostgreSQL).
    pub fn command(&self) -> Command {
        self.command_with(&self.config_path())
    }

    /// The real binary with another config on this home's store (a second process).
    pub fn command_with(&self, config: &Path) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_backfeed"));
        command.arg("--config").arg(config);
        if let Some(db) = &self.postgres {
            command.env(STORE_URL_ENV, &db.url);
        }
        command
    }

    /// Plain SQL on this home's store, whatever its engine.
    pub fn sql(&self) -> backfeed::store::testing::Sql {
        backfeed::store::testing::Sql::open(&match &self.postgres {
            Some(db) => db.location(),
            None => backfeed::store::Location::Sqlite(self.dir.path().join("backfeed.db")),
        })
    }

    /// Runs the real binary with this home's config; returns (exit code, stdout, stderr).
    pub fn run(&self, args: &[&str]) -> (i32, String, String) {
        self.run_env(args, &[])
    }

    /// [`Home::run`] with extra environment variables (secrets).
    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
        let out = self
            .command()
            .args(args)
            .env_remove("RUST_LOG")
            .envs(env.iter().copied())
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Runs the binary and expects success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.run(args);
        assert_eq!(
            code, 0,
            "backfeed {args:?} failed\nstdout: {out}\nstderr: {err}"
        );
        out
    }

    /// Whether no verification job is due now or in flight: the worker has nothing to do until
    /// a deferred job's time comes.
    pub fn queue_idle(&self) -> bool {
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        self.sql().query_i64(
            "SELECT COUNT(*) FROM jobs WHERE kind = 'verify'
             AND (next_try <= ?1 OR lease_until > ?1)",
            &[&now],
        ) == 0
    }

    /// `backfeed mentions --json` parsed.
    pub fn mentions(&self) -> Vec<serde_json::Value> {
        serde_json::from_str(&self.ok(&["mentions", "--json"])).unwrap()
    }

    /// The status of the mention whose source is `source` (it must exist).
    pub fn status_of(&self, source: &str) -> serde_json::Value {
        self.mentions()
            .into_iter()
            .find(|m| m["source"] == source)
            .map(|m| m["status"].clone())
            .unwrap_or_else(|| panic!("no mention from {source}"))
    }

    /// `backfeed log --json` parsed.
    pub fn log(&self) -> Vec<serde_json::Value> {
        self.ok(&["log", "--json", "--since", "1h"])
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Starts `backfeed serve`, waiting until /healthz answers.
    pub fn serve(&self) -> Daemon {
        self.serve_env(&[])
    }

    /// [`Home::serve`] with extra environment variables (secrets).
    pub fn serve_env(&self, env: &[(&str, &str)]) -> Daemon {
        let log = std::fs::File::create(self.dir.path().join("serve.log")).unwrap();
        let child = self
            .command()
            .arg("serve")
            .env("RUST_LOG", "backfeed=info")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut daemon = Daemon {
            child,
            base: format!("http://127.0.0.1:{}", self.port),
            log: self.dir.path().join("serve.log"),
        };
        // Its own "serving" line, logged once it has bound the port: something else accepting
        // connections there (another test's server on a port `free_port` let go) is not it.
        let log = |daemon: &Daemon| std::fs::read_to_string(&daemon.log).unwrap_or_default();
        for _ in 0..200 {
            let text = log(&daemon);
            if (text.contains(" serving ") || text.contains(r#""message":"serving""#))
                && std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
            {
                return daemon;
            }
            if let Ok(Some(status)) = daemon.child.try_wait() {
                panic!("serve exited ({status}) before serving: {}", log(&daemon));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("daemon did not start: {}", log(&daemon));
    }
}

/// A running `backfeed serve`; killed when dropped.
pub struct Daemon {
    pub child: Child,
    pub base: String,
    pub log: PathBuf,
}

impl Daemon {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// GETs `path` from the daemon and returns the body as text.
    pub fn text(&self, path: &str) -> String {
        client().get(self.url(path)).send().unwrap().text().unwrap()
    }

    /// Sends SIGTERM and waits for a clean exit; returns the exit code.
    pub fn terminate(mut self) -> i32 {
        unsafe_kill(self.child.id(), "TERM");
        let status = self.child.wait().unwrap();
        status.code().unwrap_or(-1)
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn unsafe_kill(pid: u32, signal: &str) {
    Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
}

/// A blocking HTTP client for tests.
pub fn client() -> reqwest::blocking::Client {
    client_builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// A test client's builder (no redirects followed), for a client of other settings: another
/// local address, a shorter timeout.
pub fn client_builder() -> reqwest::blocking::ClientBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::blocking::Client::builder().redirect(reqwest::redirect::Policy::none())
}

/// Polls `check` until it returns true or `secs` pass.
pub fn eventually(secs: u64, mut check: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// What an attacker puts in a mention: script, handlers, `javascript:`/`data:` links, frames,
/// and a title turned around by bidi overrides. Each marks `window.__pwned` if it ever runs.
pub const HOSTILE_CONTENT: &str = r#"<p>Nice post<script>window.__pwned = "script"</script>
<img src="x" onerror="window.__pwned = 'onerror'"> <a href="javascript:void(window.__pwned='link')">click</a>
<svg onload="window.__pwned = 'svg'"></svg><iframe srcdoc="<script>parent.__pwned='frame'</script>"></iframe>
<a href="data:text/html,<script>alert(1)</script>">data</a><b onmouseover="window.__pwned='hover'">bold words</b></p>"#;

impl Home {
    /// A backup file (`export --format jsonl`) of this home after a crawl and one verified
    /// reply, with that mention's fields replaced by [`HOSTILE_CONTENT`], `javascript:` and
    /// `data:` author links, and control and bidi characters in its title and author's name; a
    /// second mention whose source is a `javascript:` URL. Returns the file's path.
    pub fn hostile_backup(&self) -> PathBuf {
        self.ok(&["crawl"]);
        let reply = self.source(
            "/friend/reply",
            &format!(
                r#"<article class="h-entry"><a class="p-author h-card" href="https://friend.example/">Ada Friend</a>
                <p class="e-content">A reply to <a class="u-in-reply-to" href="{}">the post</a>.</p></article>"#,
                self.post_url()
            ),
        );
        self.ok(&["submit", &reply, &self.post_url()]);
        let backup = self.dir.path().join("hostile.jsonl");
        self.ok(&[
            "export",
            "--format",
            "jsonl",
            "--out",
            backup.to_str().unwrap(),
        ]);
        let mut lines: Vec<serde_json::Value> = read(&backup)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let mut second = None;
        for line in &mut lines {
            if line["table"] == "mentions" {
                line["content_html"] = HOSTILE_CONTENT.into();
                line["title"] = "Evil \u{202E}txt.exe\u{0007} title".into();
                line["author_name"] = "Mallory\u{202E}\u{0000}".into();
                line["author_url"] = "javascript:void(window.__pwned='author')".into();
                line["author_photo"] = "data:image/svg+xml,<svg onload=alert(1)>".into();
                let mut other = line.clone();
                other["id"] = 9999.into();
                other["source"] = "javascript:window.__pwned='source'//".into();
                other["status_token"] = "ffffffffffffffffffffffffffffffff".into();
                second = Some(other);
            }
        }
        lines.extend(second);
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        std::fs::write(&backup, text).unwrap();
        backup
    }

    /// Writes [`HOSTILE_CONTENT`] and `javascript:` links straight into the store's mentions,
    /// as a store filled by an older version or by hand might hold them: what the edges must
    /// make safe without relying on the store.
    pub fn poison_store(&self) {
        self.sql().execute(
            "UPDATE mentions SET content_html = ?1, author_url = 'javascript:window.__pwned=1',
                    author_photo = 'javascript:window.__pwned=2'",
            &[HOSTILE_CONTENT],
        );
    }
}

/// Whether `html` carries anything that could run: a script element, an event handler, or a
/// `javascript:`/`data:`/`vbscript:` URL.
pub fn carries_script(html: &str) -> bool {
    let lower = html.to_ascii_lowercase();
    [
        "<script",
        "onerror",
        "onload",
        "onmouseover",
        "javascript:",
        "data:",
        "vbscript:",
        "<iframe",
        "<svg",
    ]
    .iter()
    .any(|bad| lower.contains(bad))
}

// The operator's page, signed in over HTTP (tests/admin.rs, tests/sites.rs).

/// Set-Cookie values of a response.
pub fn set_cookies(r: &reqwest::blocking::Response) -> Vec<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

pub fn cookie_named(cookies: &[String], name: &str) -> Option<String> {
    cookies
        .iter()
        .find(|c| c.starts_with(&format!("{name}=")))
        .cloned()
}

/// The value of the hidden `csrf` field of a page.
pub fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    html[at..at + 64].to_string()
}

/// A signed-in operator: the session cookie and its CSRF token.
pub struct Operator {
    pub base: String,
    pub cookie: String,
    pub csrf: String,
}

/// Loads the sign-in form and posts `password` with its token; returns the response.
pub fn try_password(base: &str, password: &str) -> reqwest::blocking::Response {
    try_password_from(&client(), base, password)
}

/// A sign-in attempt through `client` (which may speak from another loopback address).
pub fn try_password_from(
    client: &reqwest::blocking::Client,
    base: &str,
    password: &str,
) -> reqwest::blocking::Response {
    let form = client.get(format!("{base}/admin/login")).send().unwrap();
    let cookie = cookie_named(&set_cookies(&form), "backfeed_signin").unwrap();
    let token = csrf_of(&form.text().unwrap());
    client
        .post(format!("{base}/admin/login"))
        .header("cookie", cookie.split(';').next().unwrap())
        .form(&[("csrf", token.as_str()), ("password", password)])
        .send()
        .unwrap()
}

impl Operator {
    /// Signs in with `password` (the host's operator's, or a site owner's).
    pub fn sign_in_with(base: &str, password: &str) -> Operator {
        let r = try_password(base, password);
        assert_eq!(r.status(), 303, "signed in");
        let session = cookie_named(&set_cookies(&r), "backfeed_session").unwrap();
        let cookie = session.split(';').next().unwrap().to_string();
        let mut op = Operator {
            base: base.to_string(),
            cookie,
            csrf: String::new(),
        };
        op.csrf = csrf_of(&op.page("/admin/"));
        op
    }

    pub fn get(&self, path: &str) -> reqwest::blocking::Response {
        client()
            .get(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .send()
            .unwrap()
    }

    pub fn page(&self, path: &str) -> String {
        let r = self.get(path);
        assert_eq!(r.status(), 200, "{path}");
        r.text().unwrap()
    }

    pub fn post(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::blocking::Response {
        client()
            .post(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .form(fields)
            .send()
            .unwrap()
    }
}

/// A real SMTP server on loopback (aiosmtpd) writing each mail it accepts into a Maildir.
pub struct Smtp {
    child: std::process::Child,
    port: u16,
    maildir: std::path::PathBuf,
}

impl Smtp {
    pub fn start(home: &Home) -> Option<Smtp> {
        let port = free_port();
        let maildir = home.dir.path().join("maildir");
        let child = std::process::Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(["-c", "aiosmtpd.handlers.Mailbox", maildir.to_str().unwrap()])
            .stderr(std::process::Stdio::null())
            .spawn()
            .ok()?;
        let smtp = Smtp {
            child,
            port,
            maildir,
        };
        eventually(10, || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        })
        .then_some(smtp)
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Each mail received, as raw text.
    pub fn mails(&self) -> Vec<String> {
        let mut files: Vec<_> = std::fs::read_dir(self.maildir.join("new"))
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default();
        files.sort();
        files
            .iter()
            .map(|f| std::fs::read_to_string(f).unwrap())
            .collect()
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
