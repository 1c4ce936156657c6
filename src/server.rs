//! The HTTP face of `backfeed serve`: receivers (webmention, pingback over XML-RPC, trackback),
//! the published feeds and API, health and metrics.
//!
//! Each protocol answers in its own dialect — a 400 with a plain reason, an XML-RPC fault, a
//! trackback `<error>` — but they share one path: [`Context::submit`] validates and commits the
//! candidate, and only then is success answered. Abuse limits live here: a body cap on every
//! request, and rate limits per client address and per source host (429 with `Retry-After`);
//! the per-host limit on outgoing fetches lives in the fetcher, where requests are made.

use crate::model::{Kind, MentionType, Status, match_key};
use crate::pipeline::{Context, Hint, Rejection};
use crate::publish::{self, FeedMeta, Format, PostInfo};
use crate::store::MentionFilter;
use crate::xmlrpc::{self, Value};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, MatchedPath, Path, Query, RawQuery, State};
use axum::http::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;

/// Largest request body accepted by any route.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Shared state of the HTTP server.
pub struct AppState {
    pub ctx: Arc<Context>,
    per_client: Option<DefaultKeyedRateLimiter<IpAddr>>,
    per_source_host: Option<DefaultKeyedRateLimiter<String>>,
}

type Shared = Arc<AppState>;

fn limiter<K: std::hash::Hash + Eq + Clone>(per_minute: u32) -> Option<DefaultKeyedRateLimiter<K>> {
    NonZeroU32::new(per_minute).map(|n| RateLimiter::keyed(Quota::per_minute(n)))
}

/// Builds the router over a running context.
pub fn router(ctx: Arc<Context>) -> Router {
    let state = Arc::new(AppState {
        per_client: limiter(ctx.cfg.server.rate_limit_per_client),
        per_source_host: limiter(ctx.cfg.server.rate_limit_per_source_host),
        ctx,
    });
    Router::new()
        .route("/webmention", post(webmention))
        .route("/webmention/{id}", get(webmention_status))
        .route("/xmlrpc", post(xmlrpc_endpoint))
        .route("/trackback", post(trackback_by_query))
        .route("/trackback/{key}", post(trackback_by_key))
        .route("/mentions.atom", get(|s, q, h| feed(s, q, h, Format::Atom)))
        .route("/mentions.rss", get(|s, q, h| feed(s, q, h, Format::Rss)))
        .route(
            "/mentions.json",
            get(|s, q, h| feed(s, q, h, Format::JsonFeed)),
        )
        .route("/mentions.jf2", get(|s, q, h| feed(s, q, h, Format::Jf2)))
        .route("/api/mentions.jf2", get(api_mentions))
        .route("/api/count.json", get(api_count))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

async fn count_requests(
    State(state): State<Shared>,
    req: axum::extract::Request,
    next: Next,
) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "other".into());
    let response = next.run(req).await;
    state
        .ctx
        .metrics
        .count_request(&route, response.status().as_u16());
    response
}

fn plain(status: StatusCode, text: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text.into(),
    )
        .into_response()
}

fn too_many(wait_secs: u64, what: &str) -> Response {
    let mut r = plain(
        StatusCode::TOO_MANY_REQUESTS,
        format!("rate limit exceeded for {what}; retry after {wait_secs} s\n"),
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(wait_secs.max(1)));
    r
}

impl AppState {
    /// Checks the per-client and per-source-host budgets; `Some(response)` when over.
    fn rate_limited(&self, client: IpAddr, source: Option<&str>) -> Option<Response> {
        let clock = governor::clock::DefaultClock::default();
        let wait = |not_until: governor::NotUntil<governor::clock::QuantaInstant>| {
            use governor::clock::Clock;
            not_until.wait_time_from(clock.now()).as_secs() + 1
        };
        if let Some(limit) = &self.per_client
            && let Err(nu) = limit.check_key(&client)
        {
            self.ctx.metrics.count_rate_limited();
            return Some(too_many(wait(nu), &format!("client {client}")));
        }
        if let (Some(limit), Some(host)) = (
            &self.per_source_host,
            source.and_then(crate::model::host_of),
        ) && let Err(nu) = limit.check_key(&host)
        {
            self.ctx.metrics.count_rate_limited();
            return Some(too_many(wait(nu), &format!("source host {host}")));
        }
        None
    }
}

/// Form fields of a body, decoded in `charset` (UTF-8 unless the sender names another).
fn form_fields(body: &[u8], charset: Option<&str>) -> Vec<(String, String)> {
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

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

fn charset_of(headers: &HeaderMap) -> Option<String> {
    let ct = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    ct.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

fn status_url(ctx: &Context, token: &str) -> String {
    format!("{}webmention/{token}", ctx.cfg.server.public_url)
}

// ---- webmention ---------------------------------------------------------------------------

async fn webmention(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ctx = &state.ctx;
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    if !is_form {
        return plain(
            StatusCode::BAD_REQUEST,
            "invalid_request: send source and target as application/x-www-form-urlencoded\n",
        );
    }
    let fields = form_fields(&body, charset_of(&headers).as_deref());
    let Some(source) = field(&fields, "source") else {
        return plain(StatusCode::BAD_REQUEST, "invalid_request: missing source\n");
    };
    let Some(target) = field(&fields, "target") else {
        return plain(StatusCode::BAD_REQUEST, "invalid_request: missing target\n");
    };
    if let Some(limited) = state.rate_limited(peer.ip(), Some(source)) {
        return limited;
    }
    match ctx.submit(source, target, Kind::Webmention, None).await {
        Ok((enqueued, _)) => {
            let location = status_url(ctx, &enqueued.status_token);
            let mut r = plain(
                StatusCode::CREATED,
                format!(
                    "Created: the source will be checked for a link to the target. Status: {location}\n"
                ),
            );
            if let Ok(v) = HeaderValue::from_str(&location) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            r
        }
        Err(Rejection::Internal(e)) => {
            tracing::error!(error = %e, "webmention not stored");
            let mut r = plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "internal_error: could not store the request; try again later\n",
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
            r
        }
        Err(rejection) => plain(
            StatusCode::BAD_REQUEST,
            format!("{}: {}\n", rejection.code(), rejection.reason()),
        ),
    }
}

async fn webmention_status(State(state): State<Shared>, Path(token): Path<String>) -> Response {
    let ctx = &state.ctx;
    let found = ctx.store.mention_by_status_token(&token).and_then(|m| {
        m.map(|m| ctx.store.is_queued(m.id).map(|q| (m, q)))
            .transpose()
    });
    let (mention, queued) = match found {
        Ok(Some(found)) => found,
        Ok(None) => return plain(StatusCode::NOT_FOUND, "no such webmention\n"),
        Err(e) => {
            return store_error(e);
        }
    };
    let status = if queued && mention.status == Status::Pending {
        Status::Pending
    } else {
        mention.status
    };
    let body = serde_json::json!({
        "status": status.as_str(),
        "reason": mention.reason,
        "source": mention.source,
        "target": mention.target,
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        publish::json_bytes(&body),
    )
        .into_response()
}

// ---- pingback -----------------------------------------------------------------------------

const FAULT_SOURCE_MISSING: i32 = 0x10;
const FAULT_NO_LINK: i32 = 0x11;
const FAULT_TARGET_MISSING: i32 = 0x20;
const FAULT_TARGET_INVALID: i32 = 0x21;
const FAULT_ALREADY: i32 = 0x30;
const FAULT_DENIED: i32 = 0x31;

fn xml_response(body: Vec<u8>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        body,
    )
        .into_response()
}

async fn xmlrpc_endpoint(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Bytes,
) -> Response {
    let call = match xmlrpc::parse_call(&body) {
        Ok(c) => c,
        Err(e) => return xml_response(xmlrpc::fault(e.fault_code(), &e.to_string())),
    };
    let strings: Vec<Option<&str>> = call.params.iter().map(Value::as_str).collect();
    match (call.method.as_str(), strings.as_slice()) {
        ("pingback.ping", [Some(source), Some(target)]) => {
            if let Some(limited) = state.rate_limited(peer.ip(), Some(source)) {
                return limited;
            }
            xml_response(pingback(&state.ctx, source, target).await)
        }
        ("pingback.ping", _) => xml_response(xmlrpc::fault(
            -32602,
            "pingback.ping takes two strings: sourceURI, targetURI",
        )),
        ("pingback.extensions.getPingbacks", [Some(url)]) => {
            xml_response(get_pingbacks(&state.ctx, url).await)
        }
        ("system.listMethods", []) => xml_response(xmlrpc::response(&Value::Array(
            [
                "pingback.ping",
                "pingback.extensions.getPingbacks",
                "system.listMethods",
            ]
            .into_iter()
            .map(|m| Value::String(m.into()))
            .collect(),
        ))),
        (method, _) => xml_response(xmlrpc::fault(
            -32601,
            &format!("method {method} is not supported"),
        )),
    }
}

/// `pingback.ping`: validate, commit, verify now (within the fetch deadline), answer.
async fn pingback(ctx: &Context, source: &str, target: &str) -> Vec<u8> {
    let (enqueued, post) = match ctx.submit(source, target, Kind::Pingback, None).await {
        Ok(ok) => ok,
        Err(rejection) => {
            let code = match &rejection {
                Rejection::InvalidSource(_) => FAULT_SOURCE_MISSING,
                Rejection::InvalidTarget(_) => FAULT_TARGET_INVALID,
                Rejection::TargetNotFound(_) => FAULT_TARGET_MISSING,
                Rejection::Blocked(_) => FAULT_DENIED,
                Rejection::SameResource | Rejection::Internal(_) => 0,
            };
            return xmlrpc::fault(code, &rejection.reason());
        }
    };
    if matches!(enqueued.status, Status::Verified | Status::Held) {
        // Re-queued above, so the stored mention is refreshed; the ping itself is a repeat.
        return xmlrpc::fault(FAULT_ALREADY, "the pingback has already been registered");
    }
    let processed = match ctx.store.lease_one(
        enqueued.id,
        ctx.cfg.fetch.timeout_secs as i64 + 30,
        &ctx.lease_owner,
    ) {
        Ok(Some(job)) => ctx.process(&job).await,
        Ok(None) => return wait_for_worker(ctx, enqueued.id, source, &post.url).await,
        Err(e) => return xmlrpc::fault(0, &format!("internal error: {e}")),
    };
    pingback_answer(&processed.outcome, processed.status, source, &post.url)
}

fn pingback_answer(
    outcome: &crate::model::Outcome,
    status: Option<Status>,
    source: &str,
    target: &str,
) -> Vec<u8> {
    use crate::model::Outcome;
    match (outcome, status) {
        (Outcome::Verified(_), Some(Status::Held)) => xmlrpc::response(&Value::String(format!(
            "Pingback from {source} to {target} registered; it awaits moderation."
        ))),
        (Outcome::Verified(_), Some(Status::Rejected)) => {
            xmlrpc::fault(FAULT_DENIED, "access denied")
        }
        (Outcome::Verified(_), _) => xmlrpc::response(&Value::String(format!(
            "Pingback from {source} to {target} registered. Keep the web talking!"
        ))),
        (Outcome::NoLink(r), _) => xmlrpc::fault(FAULT_NO_LINK, r),
        (Outcome::Refused(r), _) if r.starts_with("blocked domain") => {
            xmlrpc::fault(FAULT_DENIED, r)
        }
        (o, _) => xmlrpc::fault(FAULT_SOURCE_MISSING, &o.reason()),
    }
}

/// The worker holds the job: wait (bounded) for its verdict.
async fn wait_for_worker(ctx: &Context, id: i64, source: &str, target: &str) -> Vec<u8> {
    let deadline = tokio::time::Instant::now()
        + std::time::Duration::from_secs(ctx.cfg.fetch.timeout_secs + 5);
    while tokio::time::Instant::now() < deadline {
        // Listen before looking, so a job finished in between is not missed.
        let finished = ctx.job_finished.notified();
        tokio::pin!(finished);
        finished.as_mut().enable();
        if let Ok(Some(m)) = ctx.store.mention(id)
            && !ctx.store.is_queued(id).unwrap_or(true)
        {
            return match m.status {
                Status::Verified | Status::Held => xmlrpc::response(&Value::String(format!(
                    "Pingback from {source} to {target} registered."
                ))),
                _ => xmlrpc::fault(FAULT_NO_LINK, m.reason.as_deref().unwrap_or("not verified")),
            };
        }
        let _ = tokio::time::timeout_at(deadline, finished).await;
    }
    xmlrpc::fault(
        FAULT_SOURCE_MISSING,
        "the source could not be checked in time; it will be retried",
    )
}

async fn get_pingbacks(ctx: &Context, url: &str) -> Vec<u8> {
    let Some(key) = match_key(url) else {
        return xmlrpc::fault(FAULT_TARGET_INVALID, "not a URL");
    };
    match ctx.store.post_by_match_key(&key) {
        Ok(Some(_)) => {}
        Ok(None) => return xmlrpc::fault(FAULT_TARGET_INVALID, "not a post of this site"),
        Err(e) => return xmlrpc::fault(0, &e.to_string()),
    }
    let filter = MentionFilter {
        target_keys: vec![key],
        status: Some(Status::Verified),
        ..Default::default()
    };
    match ctx.store.mentions(&filter) {
        Ok(list) => xmlrpc::response(&Value::Array(
            list.into_iter().map(|m| Value::String(m.source)).collect(),
        )),
        Err(e) => xmlrpc::fault(0, &e.to_string()),
    }
}

// ---- trackback ----------------------------------------------------------------------------

fn trackback_xml(error: Option<&str>) -> Vec<u8> {
    use quick_xml::events::{BytesDecl, BytesText, Event};
    let mut w = quick_xml::Writer::new_with_indent(std::io::Cursor::new(Vec::new()), b' ', 0);
    let written: std::io::Result<()> = (|| {
        w.write_event(Event::Decl(BytesDecl::new("1.0", Some("utf-8"), None)))?;
        w.create_element("response").write_inner_content(|w| {
            w.create_element("error")
                .write_text_content(BytesText::new(if error.is_some() { "1" } else { "0" }))?;
            if let Some(message) = error {
                w.create_element("message")
                    .write_text_content(BytesText::new(message))?;
            }
            Ok(())
        })?;
        Ok(())
    })();
    written.expect("memory write");
    w.into_inner().into_inner()
}

fn trackback_response(status: StatusCode, error: Option<&str>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        trackback_xml(error),
    )
        .into_response()
}

async fn trackback_by_key(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match state.ctx.store.post_by_key(&key) {
        Ok(Some(post)) => trackback(&state, peer, &post.url, &headers, &body).await,
        Ok(None) => trackback_response(StatusCode::NOT_FOUND, Some("No such entry")),
        Err(e) => trackback_response(
            StatusCode::SERVICE_UNAVAILABLE,
            Some(&format!("store error: {e}")),
        ),
    }
}

async fn trackback_by_query(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fields = form_fields(query.as_deref().unwrap_or("").as_bytes(), None);
    match field(&fields, "target") {
        Some(target) => trackback(&state, peer, target, &headers, &body).await,
        None => trackback_response(StatusCode::BAD_REQUEST, Some("missing ?target=<post URL>")),
    }
}

async fn trackback(
    state: &AppState,
    peer: SocketAddr,
    target: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let charset = charset_of(headers);
    let mut fields = form_fields(body, charset.as_deref());
    if charset.is_none()
        && let Some(cs) = field(&fields, "charset").map(str::to_string)
    {
        fields = form_fields(body, Some(&cs));
    }
    let Some(url) = field(&fields, "url") else {
        return trackback_response(StatusCode::OK, Some("the url field is required"));
    };
    if let Some(limited) = state.rate_limited(peer.ip(), Some(url)) {
        return limited;
    }
    let limit =
        |s: Option<&str>, n: usize| s.map(|v| crate::text::truncate(&crate::text::collapse(v), n));
    let hint = Hint {
        title: limit(field(&fields, "title"), 250),
        excerpt: limit(field(&fields, "excerpt"), 300),
        blog_name: limit(field(&fields, "blog_name"), 250),
        ..Default::default()
    };
    match state
        .ctx
        .submit(url, target, Kind::Trackback, Some(&hint))
        .await
    {
        Ok(_) => trackback_response(StatusCode::OK, None),
        Err(Rejection::Internal(e)) => {
            tracing::error!(error = %e, "trackback not stored");
            trackback_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                Some("could not store the ping; try again later"),
            )
        }
        Err(rejection) => trackback_response(StatusCode::OK, Some(&rejection.reason())),
    }
}

// ---- publishing ---------------------------------------------------------------------------

#[derive(serde::Deserialize, Default)]
struct FeedQuery {
    target: Option<String>,
    limit: Option<i64>,
}

/// Answers `body` with a strong ETag and Last-Modified, or 304 when the client has it.
fn conditional(
    headers: &HeaderMap,
    content_type: &str,
    last_modified: Option<&str>,
    body: Vec<u8>,
) -> Response {
    use sha2::Digest;
    let etag = format!("\"{}\"", &hex::encode(sha2::Sha256::digest(&body))[..32]);
    let last_modified = last_modified
        .and_then(|lm| chrono::DateTime::parse_from_rfc3339(lm).ok())
        .map(|d| d.with_timezone(&chrono::Utc));
    let http_date = last_modified.map(|d| d.format("%a, %d %b %Y %H:%M:%S GMT").to_string());
    let not_modified = match headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
    {
        Some(inm) => inm.split(',').any(|t| t.trim() == etag || t.trim() == "*"),
        None => match (
            headers
                .get(header::IF_MODIFIED_SINCE)
                .and_then(|v| v.to_str().ok()),
            last_modified,
        ) {
            (Some(ims), Some(lm)) => {
                chrono::DateTime::parse_from_rfc2822(&ims.replace("GMT", "+0000"))
                    .is_ok_and(|since| lm.timestamp() <= since.timestamp())
            }
            _ => false,
        },
    };
    let mut r = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, content_type.to_string())],
            body,
        )
            .into_response()
    };
    let h = r.headers_mut();
    h.insert(
        header::ETAG,
        HeaderValue::from_str(&etag).expect("hex is a valid header"),
    );
    if let Some(d) = http_date.and_then(|d| HeaderValue::from_str(&d).ok()) {
        h.insert(header::LAST_MODIFIED, d);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    r
}

fn store_error(e: rusqlite::Error) -> Response {
    tracing::error!(error = %e, "store error");
    plain(
        StatusCode::SERVICE_UNAVAILABLE,
        "the store is not answering; try again shortly\n",
    )
}

/// A 400 when a parameter carries control characters (they would end up in feed XML, where
/// most of them cannot be written at all); `None` when all are clean.
fn with_control_characters<'a>(mut values: impl Iterator<Item = &'a str>) -> Option<Response> {
    values.any(|v| v.chars().any(char::is_control)).then(|| {
        plain(
            StatusCode::BAD_REQUEST,
            "invalid_request: parameters may not contain control characters\n",
        )
    })
}

async fn feed(
    State(state): State<Shared>,
    Query(q): Query<FeedQuery>,
    headers: HeaderMap,
    format: Format,
) -> Response {
    if let Some(bad) = with_control_characters(q.target.iter().map(String::as_str)) {
        return bad;
    }
    let ctx = &state.ctx;
    let limit = q.limit.unwrap_or(50).clamp(1, 1000);
    let mentions = match publish::published(&ctx.store, q.target.as_deref(), limit) {
        Ok(m) => publish::within_response_budget(m),
        Err(e) => return store_error(e),
    };
    let path = match format {
        Format::Atom => "mentions.atom",
        Format::Rss => "mentions.rss",
        Format::JsonFeed => "mentions.json",
        Format::Jf2 => "mentions.jf2",
    };
    let posts = PostInfo::load(&ctx.store, &mentions);
    // A per-post feed is described by the post it names (as exported), else by the target given.
    let post = match q.target.as_deref().and_then(match_key) {
        Some(key) => match ctx.store.post_by_match_key(&key) {
            Ok(post) => post,
            Err(e) => return store_error(e),
        },
        None => None,
    };
    let about = match (&post, q.target.as_deref()) {
        (Some(p), _) => Some((p.url.as_str(), p.title.as_deref())),
        (None, Some(target)) => Some((target, None)),
        (None, None) => None,
    };
    let body = format.render(&FeedMeta::new(ctx.site(), path, about), &mentions, &posts);
    let last = mentions.iter().map(|m| m.updated_at.as_str()).max();
    conditional(&headers, format.content_type(), last, body)
}

/// `/api/mentions.jf2`, with webmention.io's parameters.
async fn api_mentions(
    State(state): State<Shared>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let fields = form_fields(query.as_deref().unwrap_or("").as_bytes(), None);
    if let Some(bad) = with_control_characters(fields.iter().map(|(_, v)| v.as_str())) {
        return bad;
    }
    let all = |name: &str| -> Vec<&str> {
        fields
            .iter()
            .filter(|(k, _)| k == name || *k == format!("{name}[]"))
            .map(|(_, v)| v.as_str())
            .collect()
    };
    let one = |name: &str| all(name).into_iter().next();
    let mut filter = MentionFilter {
        status: Some(Status::Verified),
        ..Default::default()
    };
    filter.target_keys = all("target").into_iter().filter_map(match_key).collect();
    if !all("target").is_empty() && filter.target_keys.is_empty() {
        return plain(
            StatusCode::BAD_REQUEST,
            "invalid_request: target is not a URL\n",
        );
    }
    filter.domain = one("domain").map(str::to_string);
    if let Some(since) = one("since") {
        match chrono::DateTime::parse_from_rfc3339(since) {
            Ok(d) => {
                filter.since = Some(
                    d.with_timezone(&chrono::Utc)
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                )
            }
            Err(_) => {
                return plain(
                    StatusCode::BAD_REQUEST,
                    "invalid_request: since must be an RFC 3339 date\n",
                );
            }
        }
    }
    filter.since_id = one("since_id").and_then(|v| v.parse().ok());
    for property in all("wm-property") {
        match MentionType::from_wm_property(property) {
            Some(t) => filter.types.push(t),
            None => {
                return plain(
                    StatusCode::BAD_REQUEST,
                    format!("invalid_request: unknown wm-property {property:?}\n"),
                );
            }
        }
    }
    let per_page = one("per-page")
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(20)
        .clamp(1, 1000);
    let page = one("page")
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(0)
        .max(0);
    filter.limit = Some(per_page);
    filter.offset = page.saturating_mul(per_page);
    filter.order_by_published = one("sort-by") == Some("published");
    filter.ascending = one("sort-dir") == Some("up");
    let mentions = match state.ctx.store.mentions(&filter) {
        Ok(m) => publish::within_response_budget(m),
        Err(e) => return store_error(e),
    };
    let body = publish::jf2_feed("Webmentions", &mentions);
    let last = mentions.iter().map(|m| m.updated_at.as_str()).max();
    conditional(&headers, "application/json; charset=utf-8", last, body)
}

async fn api_count(
    State(state): State<Shared>,
    Query(q): Query<FeedQuery>,
    headers: HeaderMap,
) -> Response {
    if let Some(bad) = with_control_characters(q.target.iter().map(String::as_str)) {
        return bad;
    }
    let Some(key) = q.target.as_deref().and_then(match_key) else {
        return plain(
            StatusCode::BAD_REQUEST,
            "invalid_request: target=<post URL> is required\n",
        );
    };
    match state.ctx.store.count_by_type(&key) {
        Ok(counts) => conditional(
            &headers,
            "application/json; charset=utf-8",
            None,
            publish::count_json(&counts),
        ),
        Err(e) => store_error(e),
    }
}

async fn healthz(State(state): State<Shared>) -> Response {
    match state.ctx.store.health() {
        Ok(()) => plain(StatusCode::OK, "ok\n"),
        Err(e) => plain(StatusCode::SERVICE_UNAVAILABLE, format!("store: {e}\n")),
    }
}

async fn metrics(State(state): State<Shared>) -> Response {
    let ctx = &state.ctx;
    let mut out = String::new();
    out.push_str("# HELP backfeed_http_requests_total HTTP requests by route and status.\n# TYPE backfeed_http_requests_total counter\n");
    for (key, n) in ctx
        .metrics
        .requests
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
    {
        let (route, status) = key.rsplit_once(' ').unwrap_or((key, ""));
        out.push_str(&format!(
            "backfeed_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}\n"
        ));
    }
    out.push_str("# HELP backfeed_candidates_total Candidates processed, by outcome.\n# TYPE backfeed_candidates_total counter\n");
    for (outcome, n) in ctx
        .metrics
        .outcomes
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
    {
        out.push_str(&format!(
            "backfeed_candidates_total{{outcome=\"{outcome}\"}} {n}\n"
        ));
    }
    out.push_str(&format!(
        "# HELP backfeed_fetch_errors_total Fetches that produced no response.\n# TYPE backfeed_fetch_errors_total counter\nbackfeed_fetch_errors_total {}\n",
        ctx.fetcher.error_count()
    ));
    out.push_str(&format!(
        "# HELP backfeed_rate_limited_total Requests refused with 429.\n# TYPE backfeed_rate_limited_total counter\nbackfeed_rate_limited_total {}\n",
        ctx.metrics.rate_limited.load(std::sync::atomic::Ordering::Relaxed)
    ));
    if let Ok(counts) = ctx.store.counts() {
        out.push_str(&format!(
            "# HELP backfeed_queue_depth Jobs waiting in the queue.\n# TYPE backfeed_queue_depth gauge\nbackfeed_queue_depth {}\n",
            counts.queue_depth
        ));
        out.push_str(
            "# HELP backfeed_mentions Stored mentions by status.\n# TYPE backfeed_mentions gauge\n",
        );
        for (status, n) in counts.by_status {
            out.push_str(&format!("backfeed_mentions{{status=\"{status}\"}} {n}\n"));
        }
    }
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response()
}

/// Who holds the server's connections: one slot each, at most `max_connections` in all and
/// `max_connections_per_client` from one address. Over either, a connection is closed as it
/// arrives: idle or half-sent connections can no longer use up the process's file descriptors.
struct ConnectionSlots {
    total: Arc<tokio::sync::Semaphore>,
    per_client: std::sync::Mutex<std::collections::HashMap<IpAddr, usize>>,
    per_client_max: usize,
}

/// One admitted connection; dropping it frees the slot.
struct Slot {
    slots: Arc<ConnectionSlots>,
    client: IpAddr,
    _total: tokio::sync::OwnedSemaphorePermit,
}

impl ConnectionSlots {
    fn admit(self: &Arc<Self>, client: IpAddr) -> Option<Slot> {
        let total = self.total.clone().try_acquire_owned().ok()?;
        let mut per_client = self.per_client.lock().unwrap_or_else(|p| p.into_inner());
        let open = per_client.entry(client).or_default();
        if self.per_client_max > 0 && *open >= self.per_client_max {
            return None;
        }
        *open += 1;
        Some(Slot {
            slots: self.clone(),
            client,
            _total: total,
        })
    }
}

impl Drop for Slot {
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

/// Serves until `shutdown` fires, then stops accepting and finishes requests in flight.
///
/// The accept loop is our own (on hyper-util) rather than `axum::serve`, for the limits a
/// public endpoint needs: a header read timeout (which also closes idle keep-alive
/// connections), a body read timeout, and connection caps in all and per client address.
pub async fn serve(
    ctx: Arc<Context>,
    listener: tokio::net::TcpListener,
    shutdown: crate::shutdown::Shutdown,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    let server = &ctx.cfg.server;
    let app = router(ctx.clone()).layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
        std::time::Duration::from_secs(server.body_timeout_secs),
    ));
    let slots = Arc::new(ConnectionSlots {
        total: Arc::new(tokio::sync::Semaphore::new(server.max_connections)),
        per_client: Default::default(),
        per_client_max: server.max_connections_per_client,
    });
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
        let Some(slot) = slots.admit(peer.ip()) else {
            ctx.metrics.count_rate_limited();
            tracing::debug!(client = %peer.ip(), "connection refused: over the connection caps");
            continue; // dropping the stream closes it
        };
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            tower::ServiceExt::oneshot(app.clone(), req)
        });
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _slot = slot;
            if let Err(e) = connection.await {
                tracing::debug!(client = %peer.ip(), error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
