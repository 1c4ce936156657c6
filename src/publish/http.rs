//! The publishing routes: the feeds (`/mentions.*`), the webmention.io-compatible API and the
//! counts, with conditional GET and parameter checks.

use crate::model::{MentionType, Status, host_in_domain, host_of, match_key};
use crate::publish::{self, FeedMeta, Format, PostInfo};
use crate::server::{Shared, form_fields, plain, store_error};
use crate::store::MentionFilter;
use axum::extract::{Query, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

#[derive(serde::Deserialize, Default)]
pub(crate) struct FeedQuery {
    target: Option<String>,
    limit: Option<i64>,
    /// One site's, by name (every site's when left out).
    site: Option<String>,
    /// webmention.io's name for the same: the site whose `base_url`'s host this is.
    domain: Option<String>,
}

/// The site a publishing request names (`site=NAME`, or webmention.io's `domain=HOST` naming
/// a site's host); `Ok(None)`: every site. A `site` no longer (or never) served is a 404.
fn site_param<'a>(
    sites: &'a crate::config::Sites,
    site: Option<&str>,
    domain: Option<&str>,
) -> Result<Option<&'a crate::config::SiteConfig>, Box<Response>> {
    match (site, domain) {
        (Some(name), _) => match sites.named(name.trim()) {
            Some(site) => Ok(Some(site)),
            None => Err(Box::new(plain(
                StatusCode::NOT_FOUND,
                format!(
                    "not_found: no site named {:?} is served here\n",
                    name.trim()
                ),
            ))),
        },
        (None, Some(domain)) => Ok(sites.for_domain(domain)),
        (None, None) => Ok(None),
    }
}

/// A response's validators, known before anything is read or rendered: the ETag names the
/// version of what is published (kept by the store), this process (a restart may change the
/// configuration) and the request (path and query); Last-Modified is when what is published
/// last changed. So a 304 costs one row of the store.
pub(crate) struct Validators {
    etag: String,
    last_modified: Option<chrono::DateTime<chrono::Utc>>,
    /// Whose published version these were made for: a site's (`?site=`), or `""`, the whole
    /// store's.
    scope: String,
    /// That published version.
    version: i64,
    /// This request's turn to make the body, held until it is kept (see [`Rendering`]).
    _rendering: Option<RenderTurn>,
}

/// What, besides the store's published version and the request, shapes a published body: the
/// program's version and the site's names from the configuration. Every process of a fleet with
/// the same configuration gives the same ETag for the same content (a client behind a load
/// balancer gets its 304 from any of them); a new version or a renamed site gives new ones.
fn etag_seed(ctx: &crate::pipeline::Context) -> String {
    format!(
        "{}\n{}\n{}",
        env!("CARGO_PKG_VERSION"),
        ctx.sites().fingerprint,
        ctx.cfg.server.public_url
    )
}

impl Validators {
    /// For a request about `site` alone (its `?site=` routes: what they show is that site's
    /// rows, so its version says when they change), else about the whole store.
    pub(crate) fn for_request(
        ctx: &crate::pipeline::Context,
        uri: &axum::http::Uri,
        site: Option<&str>,
    ) -> crate::store::StoreResult<Validators> {
        use sha2::Digest;
        let (version, changed_at) = ctx.store.published_version_of(site)?;
        let request = uri.path_and_query().map_or("", |p| p.as_str());
        let seed = etag_seed(ctx);
        let scope = site.map_or_else(String::new, |s| format!("site {s}"));
        let digest =
            sha2::Sha256::digest(format!("{seed}\n{scope}\n{version}\n{request}").as_bytes());
        Ok(Validators {
            _rendering: None,
            scope,
            version,
            etag: format!("\"{}\"", &hex::encode(digest)[..32]),
            last_modified: chrono::DateTime::parse_from_rfc3339(&changed_at)
                .ok()
                .map(|d| d.with_timezone(&chrono::Utc)),
        })
    }

    /// Whether the client already has this version (If-None-Match, else If-Modified-Since).
    pub(crate) fn unchanged_for(&self, headers: &HeaderMap) -> bool {
        match headers
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
        {
            Some(inm) => inm
                .split(',')
                .any(|t| t.trim() == self.etag || t.trim() == "*"),
            None => match (
                headers
                    .get(header::IF_MODIFIED_SINCE)
                    .and_then(|v| v.to_str().ok()),
                self.last_modified,
            ) {
                (Some(ims), Some(lm)) => httpdate::parse_http_date(ims).is_ok_and(|since| {
                    lm.timestamp() <= chrono::DateTime::<chrono::Utc>::from(since).timestamp()
                }),
                _ => false,
            },
        }
    }

    /// 304 with the validators.
    pub(crate) fn not_modified(&self) -> Response {
        self.stamp(StatusCode::NOT_MODIFIED.into_response())
    }

    /// 200 with `body` and the validators; the body is kept for the next request of this
    /// version (see [`Made`]).
    pub(crate) fn respond(&self, content_type: &'static str, body: Vec<u8>) -> Response {
        let body = axum::body::Bytes::from(body);
        MADE.keep(self, content_type, body.clone());
        self.ok(content_type, body)
    }

    /// The body made for this ETag already, if it is kept.
    fn made(&self) -> Option<Response> {
        let (content_type, body) = MADE.get(self)?;
        Some(self.ok(content_type, body))
    }

    fn ok(&self, content_type: &'static str, body: axum::body::Bytes) -> Response {
        self.stamp((StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body).into_response())
    }

    fn stamp(&self, mut r: Response) -> Response {
        let h = r.headers_mut();
        h.insert(
            header::ETAG,
            HeaderValue::from_str(&self.etag).expect("hex is a valid header"),
        );
        if let Some(lm) = self.last_modified {
            h.insert(
                header::LAST_MODIFIED,
                HeaderValue::from_str(&httpdate::fmt_http_date(lm.into())).expect("an HTTP date"),
            );
        }
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=60"),
        );
        r
    }
}

/// The validators of a publishing request, or the answer that ends it: a 304 when the client
/// is current, a 503 when the store cannot say.
pub(crate) async fn validators_or_answer(
    ctx: &crate::pipeline::Context,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    site: Option<&crate::config::SiteConfig>,
) -> Result<Validators, Box<Response>> {
    let site = site.map(|s| s.name.as_str());
    let mut v = Validators::for_request(ctx, uri, site).map_err(|e| Box::new(store_error(e)))?;
    if v.unchanged_for(headers) {
        return Err(Box::new(v.not_modified()));
    }
    if let Some(made) = v.made() {
        return Err(Box::new(made));
    }
    // Not made yet: one request makes it, the others asking for it meanwhile wait for it.
    let (turn, waited) = RENDERING.turn(&v.etag).await;
    if let Some(made) = v.made() {
        return Err(Box::new(made));
    }
    // After a wait with nothing kept (a body too big to keep, or the cache full), each makes
    // its own, as before: waiting in turn would only queue them.
    if !waited {
        v._rendering = Some(turn);
    }
    Ok(v)
}

/// Bodies being made, by ETag: when many ask for one body that is not kept (a feed reader's
/// burst after a new mention, a post shared widely), one request makes it and the others wait
/// for it and are answered with what it kept — instead of each making it, together, on the
/// same few threads (on PostgreSQL at a million mentions, `/api/count.json` of a post with
/// 100,000 had a p99 of 854 ms under wrk's 8 connections that way; 5.8 ms since).
struct Rendering(std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

static RENDERING: std::sync::LazyLock<Rendering> =
    std::sync::LazyLock::new(|| Rendering(Default::default()));

/// One request's turn to make a body; its end lets the next waiter look again.
pub(crate) struct RenderTurn {
    etag: String,
    held: tokio::sync::OwnedMutexGuard<()>,
}

impl Rendering {
    /// Waits for the turn to make the body of `etag`: at once when no one else is making it
    /// (`false`), else once they are done (`true`).
    async fn turn(&self, etag: &str) -> (RenderTurn, bool) {
        let turn = {
            let mut turns = self.0.lock().unwrap_or_else(|p| p.into_inner());
            // A request that went away while it waited (its client closed the connection)
            // leaves an entry no one holds: forgotten here.
            turns.retain(|_, t| Arc::strong_count(t) > 1);
            turns.entry(etag.to_string()).or_default().clone()
        };
        let (held, waited) = match turn.clone().try_lock_owned() {
            Ok(held) => (held, false),
            Err(_) => (turn.lock_owned().await, true),
        };
        let etag = etag.to_string();
        (RenderTurn { etag, held }, waited)
    }
}

impl Drop for RenderTurn {
    /// The last one to hold this body's turn takes its entry away.
    fn drop(&mut self) {
        let mut turns = RENDERING.0.lock().unwrap_or_else(|p| p.into_inner());
        let mine = tokio::sync::OwnedMutexGuard::mutex(&self.held);
        // Ours, and no one waits for it: the map's reference and our guard's are the only ones.
        if turns
            .get(&self.etag)
            .is_some_and(|t| Arc::ptr_eq(t, mine) && Arc::strong_count(t) == 2)
        {
            turns.remove(&self.etag);
        }
    }
}

/// Published bodies already made, by ETag, for the current published version of their scope
/// (the whole store, or one site for its `?site=` routes): what is published changes far less
/// often than it is read (a viral post's feed and counts are asked for thousands of times
/// between two new likes), so each URL is rendered once per change, not once per request. The
/// ETag names the version, the configuration's names and the request, so a body is only ever
/// served for what it was made from; a scope's new version empties that scope's bodies. At
/// [`Made::MAX_BYTES`] (all scopes together) no more are kept until a version moves (no
/// churn), and a body over a sixteenth of that is never kept.
struct Made(std::sync::Mutex<MadeBodies>);

#[derive(Default)]
struct MadeBodies {
    bytes: usize,
    scopes: std::collections::HashMap<String, ScopeBodies>,
}

/// One scope's bodies, made at its `version`.
#[derive(Default)]
struct ScopeBodies {
    version: i64,
    bytes: usize,
    bodies: std::collections::HashMap<String, (&'static str, axum::body::Bytes)>,
}

static MADE: std::sync::LazyLock<Made> = std::sync::LazyLock::new(|| Made(Default::default()));

impl Made {
    const MAX_BYTES: usize = 64 * 1024 * 1024;

    fn get(&self, v: &Validators) -> Option<(&'static str, axum::body::Bytes)> {
        let made = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let scope = made.scopes.get(&v.scope)?;
        if scope.version != v.version {
            return None;
        }
        scope.bodies.get(&v.etag).cloned()
    }

    fn keep(&self, v: &Validators, content_type: &'static str, body: axum::body::Bytes) {
        let mut made = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let made = &mut *made;
        let scope = made.scopes.entry(v.scope.clone()).or_default();
        if scope.version != v.version {
            if v.version < scope.version {
                return; // a request that read the version before another moved it
            }
            made.bytes -= scope.bytes;
            *scope = ScopeBodies {
                version: v.version,
                ..Default::default()
            };
        }
        if body.len() > Self::MAX_BYTES / 16 || made.bytes + body.len() > Self::MAX_BYTES {
            return;
        }
        made.bytes += body.len();
        scope.bytes += body.len();
        scope.bodies.insert(v.etag.clone(), (content_type, body));
    }
}

/// A 400 when a parameter carries control characters (they would end up in feed XML, where
/// most of them cannot be written at all); `None` when all are clean.
pub(crate) fn with_control_characters<'a>(
    mut values: impl Iterator<Item = &'a str>,
) -> Option<Response> {
    values.any(|v| v.chars().any(char::is_control)).then(|| {
        plain(
            StatusCode::BAD_REQUEST,
            "invalid_request: parameters may not contain control characters\n",
        )
    })
}

pub(crate) async fn feed(
    State(state): State<Shared>,
    Query(q): Query<FeedQuery>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    format: Format,
) -> Response {
    let texts = [&q.target, &q.site, &q.domain];
    if let Some(bad) = with_control_characters(texts.into_iter().flatten().map(String::as_str)) {
        return bad;
    }
    let ctx = &state.ctx;
    let sites = ctx.sites();
    let site = match site_param(&sites, q.site.as_deref(), q.domain.as_deref()) {
        Ok(site) => site,
        Err(answer) => return *answer,
    };
    let validators = match validators_or_answer(ctx, &uri, &headers, site).await {
        Ok(v) => v,
        Err(answer) => return *answer,
    };
    let limit = q.limit.unwrap_or(50).clamp(1, 1000);
    let site_name = site.map(|s| s.name.as_str());
    let mentions = match publish::published(&ctx.store, q.target.as_deref(), site_name, limit) {
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
    let names = ctx.feed_names(site);
    let body = format.render(&FeedMeta::new(names.site(), path, about), &mentions, &posts);
    validators.respond(format.content_type(), body)
}

/// `/api/mentions.jf2`, with webmention.io's parameters.
pub(crate) async fn api_mentions(
    State(state): State<Shared>,
    RawQuery(query): RawQuery,
    uri: axum::http::Uri,
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
    let sites = state.ctx.sites();
    let site = match site_param(&sites, one("site"), None) {
        Ok(site) => site,
        Err(answer) => return *answer,
    };
    let validators = match validators_or_answer(&state.ctx, &uri, &headers, site).await {
        Ok(v) => v,
        Err(answer) => return *answer,
    };
    let mut filter = MentionFilter {
        status: Some(Status::Verified),
        site: site.map(|s| s.name.clone()),
        configured_sites_only: true,
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
    filter.since = match since_param(one("since")) {
        Ok(since) => since,
        Err(bad) => return *bad,
    };
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
    // `deleted=true` with `since`: what left the published set since then comes too, as
    // entries with `"deleted": true`, so a client that follows changes can drop them.
    let deletions = if one("deleted") == Some("true") && filter.since.is_some() {
        match state
            .ctx
            .store
            .unpublished_since(filter.since.as_deref(), 1000)
        {
            Ok(gone) => gone,
            Err(e) => return store_error(e),
        }
    } else {
        Vec::new()
    };
    // The same `target`, `domain` and `site` filters as the mentions beside them.
    let keys = &filter.target_keys;
    let domain = filter.domain.as_deref().map(str::trim);
    let routes = state.ctx.store.site_routes();
    let deletions: Vec<_> = deletions
        .iter()
        .filter(|d| keys.is_empty() || match_key(&d.target).is_some_and(|k| keys.contains(&k)))
        .filter(|d| {
            filter
                .site
                .as_deref()
                .is_none_or(|s| routes.site_of(&d.target) == s)
        })
        .filter(|d| {
            domain
                .is_none_or(|domain| host_of(&d.target).is_some_and(|h| host_in_domain(&h, domain)))
        })
        .collect();
    let body = publish::jf2::jf2_feed_with_deletions("Webmentions", &mentions, &deletions);
    validators.respond("application/json; charset=utf-8", body)
}

pub(crate) async fn api_count(
    State(state): State<Shared>,
    Query(q): Query<FeedQuery>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    let (target, key) = match required_target(&q) {
        Ok(found) => found,
        Err(bad) => return *bad,
    };
    let sites = state.ctx.sites();
    let site = match site_param(&sites, q.site.as_deref(), q.domain.as_deref()) {
        Ok(site) => site,
        Err(answer) => return *answer,
    };
    let validators = match validators_or_answer(&state.ctx, &uri, &headers, site).await {
        Ok(v) => v,
        Err(answer) => return *answer,
    };
    // A post of another site than the one named has no mentions here.
    let elsewhere = site.is_some_and(|s| state.ctx.store.site_of(target) != s.name);
    let counts = if elsewhere {
        Ok(Vec::new())
    } else {
        state.ctx.store.count_by_type(&key)
    };
    match counts {
        Ok(counts) => validators.respond(
            "application/json; charset=utf-8",
            publish::count_json(&counts),
        ),
        Err(e) => store_error(e),
    }
}

#[derive(serde::Deserialize, Default)]
pub(crate) struct DeletedQuery {
    since: Option<String>,
    site: Option<String>,
    limit: Option<usize>,
}

/// `/api/deleted.json?since=<RFC 3339>`: mentions deleted, rejected or blocked after being
/// published — `[{"source", "target", "deleted_at"}]`, oldest first — so that a static site
/// can drop what it showed. `site` keeps one site's (its name, or its `base_url`'s host).
pub(crate) async fn api_deleted(
    State(state): State<Shared>,
    Query(q): Query<DeletedQuery>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    let parts = [q.since.as_deref(), q.site.as_deref()];
    if let Some(bad) = with_control_characters(parts.into_iter().flatten()) {
        return bad;
    }
    let since = match since_param(q.since.as_deref()) {
        Ok(since) => since,
        Err(bad) => return *bad,
    };
    let ctx = &state.ctx;
    let sites = ctx.sites();
    // Named by its name, or by its host (the name of a site before sites had names).
    let site = match q.site.as_deref() {
        None => None,
        Some(named) => match sites.named(named).or_else(|| sites.for_domain(named)) {
            Some(site) => Some(site.name.clone()),
            None => {
                return (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
                    "[]",
                )
                    .into_response();
            }
        },
    };
    // The whole store's version: what is listed here is picked by URL, not by filed site.
    let validators = match validators_or_answer(ctx, &uri, &headers, None).await {
        Ok(v) => v,
        Err(answer) => return *answer,
    };
    let limit = q.limit.unwrap_or(1000).clamp(1, 10_000);
    let routes = ctx.store.site_routes();
    let listed = ctx
        .store
        .unpublished_since(since.as_deref(), limit)
        .map(|mut list| {
            if let Some(site) = &site {
                list.retain(|d| routes.site_of(&d.target) == site);
            }
            list
        });
    match listed {
        Ok(list) => validators.respond(
            "application/json; charset=utf-8",
            publish::json_bytes(&serde_json::json!(list)),
        ),
        Err(e) => store_error(e),
    }
}

/// A `since` parameter as the store compares times (RFC 3339, UTC, whole seconds); else the
/// 400 that says why.
fn since_param(raw: Option<&str>) -> Result<Option<String>, Box<Response>> {
    raw.map(|raw| {
        chrono::DateTime::parse_from_rfc3339(raw)
            .map(|at| {
                at.with_timezone(&chrono::Utc)
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            })
            .map_err(|_| {
                Box::new(plain(
                    StatusCode::BAD_REQUEST,
                    "invalid_request: since must be an RFC 3339 time, e.g. 2026-01-01T00:00:00Z\n",
                ))
            })
    })
    .transpose()
}

/// The `target` a per-post route needs, with its match key; else the 400 that says why.
fn required_target(q: &FeedQuery) -> Result<(&str, String), Box<Response>> {
    if let Some(bad) = with_control_characters(q.target.iter().map(String::as_str)) {
        return Err(Box::new(bad));
    }
    q.target
        .as_deref()
        .and_then(|t| Some((t, match_key(t)?)))
        .ok_or_else(|| {
            Box::new(plain(
                StatusCode::BAD_REQUEST,
                "invalid_request: target=<post URL> is required\n",
            ))
        })
}

/// `/mentions.html?target=`: the post's mentions as an HTML fragment to include in a page.
pub(crate) async fn mentions_html(
    State(state): State<Shared>,
    Query(q): Query<FeedQuery>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    let target = match required_target(&q) {
        Ok((target, _)) => target,
        Err(bad) => return *bad,
    };
    let ctx = &state.ctx;
    let sites = ctx.sites();
    let site = match site_param(&sites, q.site.as_deref(), q.domain.as_deref()) {
        Ok(site) => site,
        Err(answer) => return *answer,
    };
    let validators = match validators_or_answer(ctx, &uri, &headers, site).await {
        Ok(v) => v,
        Err(answer) => return *answer,
    };
    let limit = q.limit.unwrap_or(1000).clamp(1, 1000);
    let site_name = site.map(|s| s.name.as_str());
    match publish::published(&ctx.store, Some(target), site_name, limit) {
        Ok(m) => validators.respond(
            "text/html; charset=utf-8",
            publish::html::fragment(&publish::within_response_budget(m)).into_bytes(),
        ),
        Err(e) => store_error(e),
    }
}

/// `/embed.js`: the `<backfeed-mentions>` element.
pub(crate) async fn embed_js() -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        publish::html::EMBED_JS.as_str(),
    )
        .into_response()
}

/// `/mentions.css`: the look of the `/mentions.html` fragment (the web component carries the
/// same inside it).
pub(crate) async fn mentions_css() -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        publish::html::MENTIONS_CSS,
    )
        .into_response()
}

#[cfg(test)]
mod made_tests {
    use super::*;

    fn validators(version: i64, etag: &str) -> Validators {
        scoped("", version, etag)
    }

    fn scoped(scope: &str, version: i64, etag: &str) -> Validators {
        Validators {
            etag: etag.into(),
            last_modified: None,
            scope: scope.into(),
            version,
            _rendering: None,
        }
    }

    /// Of requests for one body not made yet, the first makes it at once and the others wait
    /// for it to be done; a body of another request does not wait; the turns leave nothing
    /// behind.
    #[tokio::test]
    async fn one_request_makes_a_body_while_the_others_wait_for_it() {
        let (first, waited) = RENDERING.turn("\"one-body\"").await;
        assert!(!waited);
        let second = tokio::spawn(async { RENDERING.turn("\"one-body\"").await.1 });
        let other = RENDERING.turn("\"another-body\"").await;
        assert!(!other.1, "another body is made beside it");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!second.is_finished(), "the second waits for the first");
        drop(first);
        assert!(second.await.unwrap(), "it waited, then had its turn");
        drop(other);
        let turns = RENDERING.0.lock().unwrap();
        assert!(!turns.contains_key("\"one-body\""), "{:?}", turns.keys());
        assert!(!turns.contains_key("\"another-body\""));
    }

    #[test]
    fn a_body_is_kept_for_its_etag_until_the_version_moves_and_within_the_budget() {
        let made = Made(Default::default());
        let body = |s: &str| axum::body::Bytes::from(s.to_string());
        made.keep(&validators(5, "a"), "text/plain", body("five"));
        assert_eq!(made.get(&validators(5, "a")).unwrap().1, body("five"));
        assert!(made.get(&validators(5, "b")).is_none(), "another request");
        // A request that read an older version before another moved it keeps nothing.
        made.keep(&validators(4, "c"), "text/plain", body("four"));
        assert!(made.get(&validators(4, "c")).is_none());
        // A new version: what was made for the old one is gone.
        made.keep(&validators(6, "b"), "text/plain", body("six"));
        assert!(made.get(&validators(6, "a")).is_none());
        assert_eq!(made.get(&validators(6, "b")).unwrap().1, body("six"));
        // A body over a sixteenth of the budget is never kept; at the budget, no more are.
        let big = axum::body::Bytes::from(vec![b'x'; Made::MAX_BYTES / 16 + 1]);
        made.keep(&validators(6, "big"), "text/plain", big);
        assert!(made.get(&validators(6, "big")).is_none());
        let part = axum::body::Bytes::from(vec![b'x'; Made::MAX_BYTES / 16]);
        for n in 0..17 {
            made.keep(&validators(6, &format!("p{n}")), "text/plain", part.clone());
        }
        assert!(made.get(&validators(6, "p14")).is_some());
        assert!(made.get(&validators(6, "p16")).is_none(), "over the budget");
    }

    #[test]
    fn a_sites_bodies_outlive_other_sites_changes() {
        let made = Made(Default::default());
        let body = |s: &str| axum::body::Bytes::from(s.to_string());
        made.keep(&scoped("site anna", 3, "a"), "text/plain", body("anna"));
        made.keep(&scoped("site bob", 1, "b"), "text/plain", body("bob"));
        made.keep(&scoped("site bob", 2, "b2"), "text/plain", body("bob two"));
        assert!(
            made.get(&scoped("site bob", 1, "b")).is_none(),
            "bob moved on"
        );
        assert_eq!(
            made.get(&scoped("site anna", 3, "a")).unwrap().1,
            body("anna")
        );
        assert_eq!(
            made.get(&scoped("site bob", 2, "b2")).unwrap().1,
            body("bob two")
        );
        assert_eq!(
            made.0.lock().unwrap().bytes,
            "anna".len() + "bob two".len(),
            "what a moved scope held is given back to the budget"
        );
    }
}
