//! The HTTP server of `backfeed serve`, apart from what each route does: shared state, the
//! answers every route uses (a plain reason, a store error), form decoding, abuse limits (a
//! body cap, rate limits per client and per source host with 429 and `Retry-After`, connection
//! caps and read timeouts), request counting, health and metrics, and the accept loop. The
//! routes live with what they serve ([`crate::receive`], [`crate::publish::http`]); the map
//! of URLs is [`crate::routes`].

pub mod auth;

use crate::pipeline::Context;
use axum::Router;
use axum::extract::{ConnectInfo, MatchedPath, State};
use axum::http::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

/// Largest request body accepted by any route.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Shared state of the HTTP server.
pub struct AppState {
    pub ctx: Arc<Context>,
    per_client: Option<DefaultKeyedRateLimiter<IpAddr>>,
    per_source_host: Option<DefaultKeyedRateLimiter<String>>,
    /// The operator's page's gatekeeper, when `[admin] password_env` names a set variable.
    pub admin: Option<auth::Gate>,
}

pub(crate) type Shared = Arc<AppState>;

pub(crate) fn limiter<K: std::hash::Hash + Eq + Clone>(
    per_minute: u32,
) -> Option<DefaultKeyedRateLimiter<K>> {
    NonZeroU32::new(per_minute).map(|n| RateLimiter::keyed(Quota::per_minute(n)))
}

pub(crate) async fn count_requests(
    State(state): State<Shared>,
    req: axum::extract::Request,
    next: Next,
) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "other".into());
    let started = std::time::Instant::now();
    let response = next.run(req).await;
    state.ctx.metrics.count_request(
        &route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

pub(crate) fn plain(status: StatusCode, text: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text.into(),
    )
        .into_response()
}

pub(crate) fn too_many(wait_secs: u64, what: &str) -> Response {
    let mut r = plain(
        StatusCode::TOO_MANY_REQUESTS,
        format!("rate limit exceeded for {what}; retry after {wait_secs} s\n"),
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(wait_secs.max(1)));
    r
}

impl AppState {
    /// The state every route shares, with the receivers' rate limits from the config.
    pub fn new(ctx: Arc<Context>) -> Shared {
        Arc::new(AppState {
            per_client: limiter(ctx.cfg.server.rate_limit_per_client),
            per_source_host: limiter(ctx.cfg.server.rate_limit_per_source_host),
            admin: {
                let secure = ctx.cfg.server.public_url.scheme() == "https";
                // Sites' owners may sign in without a host password; a site added later (with
                // `[sites] dir`) may bring one.
                let owners = ctx.cfg.sites_dir().is_some()
                    || ctx
                        .sites()
                        .list
                        .iter()
                        .any(|s| s.admin_password().is_some());
                match ctx.cfg.admin.password() {
                    Some(password) => Some(auth::Gate::new(&password, secure, ctx.store.clone())),
                    None if owners => Some(auth::Gate::for_site_owners(secure, ctx.store.clone())),
                    None => None,
                }
            },
            ctx,
        })
    }

    /// Checks the per-client and per-source-host budgets; `Some(response)` when over.
    pub(crate) fn rate_limited(&self, client: IpAddr, source: Option<&str>) -> Option<Response> {
        if let Some(limit) = &self.per_client
            && let Err(nu) = crate::fetch::check_key_bounded(limit, &client)
        {
            self.ctx.metrics.count_rate_limited();
            return Some(too_many(wait_secs(limit, nu), &format!("client {client}")));
        }
        if let (Some(limit), Some(host)) = (
            &self.per_source_host,
            source.and_then(crate::model::host_of),
        ) && let Err(nu) = crate::fetch::check_key_bounded(limit, &host)
        {
            self.ctx.metrics.count_rate_limited();
            return Some(too_many(
                wait_secs(limit, nu),
                &format!("source host {host}"),
            ));
        }
        None
    }
}

/// Seconds until `limit` lets the next request through, read on the limiter's own clock (making
/// a new clock calibrates it, which is not free on every request).
fn wait_secs<K: std::hash::Hash + Eq + Clone>(
    limit: &DefaultKeyedRateLimiter<K>,
    not_until: governor::NotUntil<governor::clock::QuantaInstant>,
) -> u64 {
    use governor::clock::Clock;
    not_until.wait_time_from(limit.clock().now()).as_secs() + 1
}

/// Form fields of a body, decoded in `charset` (UTF-8 unless the sender names another).
pub(crate) fn form_fields(body: &[u8], charset: Option<&str>) -> Vec<(String, String)> {
    let encoding = charset
        .and_then(|c| encoding_rs::Encoding::for_label(c.trim().as_bytes()))
        .unwrap_or(encoding_rs::UTF_8);
    let decode = |raw: &[u8]| {
        let plus: Vec<u8> = raw
            .iter()
            .map(|&b| if b == b'+' { b' ' } else { b })
            .collect();
        let bytes: Vec<u8> = percent_encoding::percent_decode(&plus).collect();
        encoding.decode_without_bom_handling(&bytes).0.into_owned()
    };
    body.split(|&b| b == b'&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let mut it = pair.splitn(2, |&b| b == b'=');
            (
                decode(it.next().unwrap_or_default()),
                decode(it.next().unwrap_or_default()),
            )
        })
        .collect()
}

pub(crate) fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

pub(crate) fn charset_of(headers: &HeaderMap) -> Option<String> {
    let ct = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    ct.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

pub(crate) fn store_error(e: crate::store::StoreError) -> Response {
    tracing::error!(error = %e, "store error");
    plain(
        StatusCode::SERVICE_UNAVAILABLE,
        "the store is not answering; try again shortly\n",
    )
}

/// How long `/healthz` waits for the store before it answers 503: a store another process
/// holds locked must not make the health check hang past its caller's own timeout.
const HEALTH_DEADLINE: std::time::Duration = std::time::Duration::from_secs(3);

pub(crate) async fn healthz(State(state): State<Shared>) -> Response {
    if !state.ctx.group_commit.is_running() {
        return plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "the commit thread has stopped; restart backfeed\n",
        );
    }
    // The check writes: off the async threads, within its own deadline.
    let ctx = state.ctx.clone();
    let checked = tokio::time::timeout(
        HEALTH_DEADLINE,
        tokio::task::spawn_blocking(move || ctx.store.health()),
    )
    .await;
    match checked {
        Ok(Ok(Ok(()))) => plain(StatusCode::OK, "ok\n"),
        Ok(Ok(Err(e))) => plain(StatusCode::SERVICE_UNAVAILABLE, format!("store: {e}\n")),
        Ok(Err(_)) => plain(StatusCode::SERVICE_UNAVAILABLE, "store: the check failed\n"),
        Err(_) => plain(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "store: no answer within {} s (is another process holding it locked?)\n",
                HEALTH_DEADLINE.as_secs()
            ),
        ),
    }
}

pub(crate) async fn metrics(State(state): State<Shared>) -> Response {
    let ctx = state.ctx.clone();
    // The scrape reads the store and /proc: off the async threads.
    let text = tokio::task::spawn_blocking(move || {
        ctx.metrics.render(
            &ctx.store,
            &ctx.cfg.notify,
            &ctx.sites(),
            ctx.fetcher.error_count(),
        )
    })
    .await
    .unwrap_or_default();
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// Who holds the server's connections: one slot each, at most `max_connections` in all and
/// `max_connections_per_client` from one address. A connection over its address's cap is
/// closed as it arrives. When all slots are taken, the oldest connection that has not yet sent
/// a byte is closed to make room: silent connections piling up can never keep out a client
/// that has something to say (and every silent one is closed at the header deadline anyway).
pub(crate) struct ConnectionSlots {
    total: Arc<tokio::sync::Semaphore>,
    per_client: std::sync::Mutex<std::collections::HashMap<IpAddr, usize>>,
    per_client_max: usize,
    /// Connections waiting for their first byte, oldest first, each with its eviction bell.
    silent: std::sync::Mutex<std::collections::VecDeque<(u64, Arc<tokio::sync::Notify>)>>,
    next_id: std::sync::atomic::AtomicU64,
}

/// One address's share of an admitted connection; dropping it frees it.
pub(crate) struct ClientSlot {
    slots: Arc<ConnectionSlots>,
    client: IpAddr,
}

/// A connection waiting for its first byte, registered for eviction; dropping it unregisters.
struct Silent {
    slots: Arc<ConnectionSlots>,
    id: u64,
    evicted: Arc<tokio::sync::Notify>,
}

impl ConnectionSlots {
    fn admit_client(self: &Arc<Self>, client: IpAddr) -> Option<ClientSlot> {
        let mut per_client = self.per_client.lock().unwrap_or_else(|p| p.into_inner());
        let open = per_client.entry(client).or_default();
        if self.per_client_max > 0 && *open >= self.per_client_max {
            return None;
        }
        *open += 1;
        Some(ClientSlot {
            slots: self.clone(),
            client,
        })
    }

    /// A slot now, or — when all are taken and a silent connection could be closed for it —
    /// one freed by closing the oldest silent connection. `None`: the connection is refused.
    async fn admit_total(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        if let Ok(permit) = self.total.clone().try_acquire_owned() {
            return Some(permit);
        }
        let oldest = self
            .silent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop_front();
        let (_, bell) = oldest?;
        bell.notify_one();
        tokio::time::timeout(
            std::time::Duration::from_secs(1),
            self.total.clone().acquire_owned(),
        )
        .await
        .ok()?
        .ok()
    }

    fn silent(self: &Arc<Self>) -> Silent {
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let evicted = Arc::new(tokio::sync::Notify::new());
        self.silent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back((id, evicted.clone()));
        Silent {
            slots: self.clone(),
            id,
            evicted,
        }
    }
}

impl Drop for Silent {
    fn drop(&mut self) {
        let mut silent = self.slots.silent.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(at) = silent.iter().position(|(id, _)| *id == self.id) {
            silent.remove(at);
        }
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut per_client = self
            .slots
            .per_client
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(open) = per_client.get_mut(&self.client) {
            *open -= 1;
            if *open == 0 {
                per_client.remove(&self.client);
            }
        }
    }
}

/// Reads a request's whole body within `body_timeout_secs` of the handler asking for it, and
/// at most [`MAX_BODY_BYTES`]: a deadline for the body as a whole, not between its bytes, so
/// a body dripped a byte a second is cut off like a silent one. (The body is small by that
/// cap, so holding it whole costs nothing.)
pub(crate) async fn whole_body_in_time(
    State(state): State<Shared>,
    req: axum::extract::Request,
    next: Next,
) -> Response {
    let secs = state.ctx.cfg.server.body_timeout_secs;
    let (parts, body) = req.into_parts();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(secs),
        axum::body::to_bytes(body, MAX_BODY_BYTES),
    )
    .await;
    match read {
        Ok(Ok(bytes)) => {
            next.run(axum::extract::Request::from_parts(
                parts,
                axum::body::Body::from(bytes),
            ))
            .await
        }
        Ok(Err(_)) => plain(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "request body larger than {} KiB, or broken off\n",
                MAX_BODY_BYTES / 1024
            ),
        ),
        Err(_) => plain(
            StatusCode::REQUEST_TIMEOUT,
            format!("request body not received within {secs} s\n"),
        ),
    }
}

/// Serves until `shutdown` fires, then stops accepting and finishes requests in flight.
///
/// The accept loop is our own (on hyper-util) rather than `axum::serve`, for the limits a
/// public endpoint needs: a deadline for a connection's first byte, a header read timeout
/// (which also closes idle keep-alive connections), a deadline for the whole body
/// ([`whole_body_in_time`]), and connection caps in all and per client address, where a new
/// client takes the slot of the oldest silent connection rather than be refused.
pub async fn serve(
    app: Router,
    ctx: Arc<Context>,
    listener: tokio::net::TcpListener,
    shutdown: crate::shutdown::Shutdown,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    let server = &ctx.cfg.server;
    let slots = Arc::new(ConnectionSlots {
        total: Arc::new(tokio::sync::Semaphore::new(server.max_connections)),
        per_client: Default::default(),
        per_client_max: server.max_connections_per_client,
        silent: Default::default(),
        next_id: Default::default(),
    });
    let first_byte_deadline = std::time::Duration::from_secs(server.header_timeout_secs);
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(std::time::Duration::from_secs(server.header_timeout_secs));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before accept: wait a
                    // moment rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.wait() => break,
        };
        let Some(client_slot) = slots.admit_client(peer.ip()) else {
            ctx.metrics.count_rate_limited();
            tracing::debug!(client = %peer.ip(), "connection refused: over the per-client cap");
            continue; // dropping the stream closes it
        };
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            tower::ServiceExt::oneshot(app.clone(), req)
        });
        let (slots, builder, watcher, ctx) = (
            slots.clone(),
            builder.clone(),
            graceful.watcher(),
            ctx.clone(),
        );
        tokio::spawn(async move {
            let _client_slot = client_slot;
            let Some(_slot) = slots.admit_total().await else {
                ctx.metrics.count_rate_limited();
                tracing::debug!(client = %peer.ip(), "connection refused: every slot is busy");
                return;
            };
            // A connection that says nothing is closed at the header deadline, or sooner
            // when its slot is wanted by a new one.
            let silent = slots.silent();
            let mut first = [0u8; 1];
            let spoke = tokio::select! {
                peeked = tokio::time::timeout(first_byte_deadline, stream.peek(&mut first)) => {
                    matches!(peeked, Ok(Ok(n)) if n > 0)
                }
                _ = silent.evicted.notified() => false,
            };
            drop(silent);
            if !spoke {
                tracing::debug!(client = %peer.ip(), "connection closed: nothing sent in time");
                return;
            }
            let connection = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .into_owned();
            if let Err(e) = watcher.watch(connection).await {
                tracing::debug!(client = %peer.ip(), error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
