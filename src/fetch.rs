//! The only outbound HTTP in backfeed, and the place every limit of the contract is enforced.
//!
//! - **SSRF guard at connect time.** Untrusted URLs go through a client whose DNS resolver drops
//!   every non-public address, so the address checked is the address connected to (there is no
//!   window between a check and a second lookup to rebind in). IP-literal hosts, which never
//!   reach a resolver, are checked before the request. Redirects are followed by hand, so every
//!   hop passes the same two checks.
//! - **Caps.** One deadline for the whole fetch (all hops, headers and body); the body is counted
//!   while streaming, after decompression, so a gzip bomb stops at `max_bytes`.
//! - **Politeness.** A global semaphore and one per host, taken where the request is made, so no
//!   producer — however many pings name one victim — can push more than `per_host` requests at a
//!   host at once. A fleet of processes on one store adds [`SharedLimits`]: the same two limits,
//!   counted in the store for every process together.
//! - **Conditional GET** from validators the caller passes in; `Retry-After` and `max-age` are
//!   read back for the caller's scheduling.
//!
//! Operator-configured URLs (site feeds, `[[watch]]`, `api_base`) use [`Trust::Configured`] and
//! skip the address guard, as the contract says; everything from outside uses [`Trust::Outside`].

use crate::config::FetchConfig;
use crate::model::Wait;
use futures_util::future::BoxFuture;
use reqwest::header::{self, HeaderMap, HeaderValue};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;
use url::Url;

/// Who handed us a URL, and so whether the address guard applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trust {
    /// Written by the operator in the config: fetched as configured.
    Configured,
    /// From outside (pings, referrers, links in crawled pages, redirects): guarded.
    Outside,
}

/// A request: the URL, its trust, and validators for a conditional GET.
#[derive(Clone, Debug)]
pub struct Request {
    pub url: Url,
    pub trust: Trust,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub accept: &'static str,
    pub headers: Vec<(&'static str, String)>,
    /// A body (content type, text) makes this a POST (API logins); `None` is a GET.
    pub body: Option<(&'static str, String)>,
}

impl Request {
    pub fn get(url: Url, trust: Trust) -> Request {
        Request {
            url,
            trust,
            etag: None,
            last_modified: None,
            accept: "text/html,application/xhtml+xml;q=0.9,application/json;q=0.5,*/*;q=0.1",
            headers: Vec::new(),
            body: None,
        }
    }
}

/// A response that arrived whole (any status).
#[derive(Clone, Debug)]
pub struct Fetched {
    pub status: u16,
    pub final_url: Url,
    pub content_type: Option<String>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// How long to wait, from `Retry-After` (delta or HTTP date), clamped.
    pub retry_after: Option<Wait>,
    /// `Cache-Control: max-age`, seconds.
    pub max_age: Option<Wait>,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// Why a fetch produced no response.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum FetchError {
    #[error("refused: {0}")]
    Refused(String),
    #[error("timed out after {0} s")]
    Timeout(u64),
    #[error("body larger than {0} bytes")]
    TooLarge(usize),
    #[error("more than {0} redirects")]
    TooManyRedirects(usize),
    #[error("network error: {0}")]
    Network(String),
    /// This host's fetch budget for the minute is spent: try again after the seconds given.
    #[error("{host} has had its share of fetches this minute; due again in {wait_secs} s")]
    Throttled { host: String, wait_secs: u64 },
}

impl FetchError {
    /// Whether trying again later may succeed (a refusal or an oversized body will not).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            FetchError::Timeout(_) | FetchError::Network(_) | FetchError::Throttled { .. }
        )
    }
}

/// Whether an address is one the public internet could route to us.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_unspecified()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64) // 100.64/10 shared address space
                || (o[0] == 192 && o[1] == 0 && o[2] == 0) // 192.0.0/24 protocol assignments
                || (o[0] == 198 && (o[1] & 0xfe) == 18) // 198.18/15 benchmarking
                || o[0] >= 240) // reserved
        }
        IpAddr::V6(v6) => {
            // IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible (::a.b.c.d) addresses are judged
            // by their IPv4 part (`::1` becomes 0.0.0.1, which is not public either).
            if let Some(v4) = v6.to_ipv4() {
                return is_public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link local
                || (s[0] & 0xffc0) == 0xfec0 // site local (deprecated)
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || (s[0] == 0x0064 && s[1] == 0xff9b) // NAT64 may reach private v4
                || s[0] == 0x2002) // 6to4 may embed a private v4
        }
    }
}

/// The resolver's refusal, found again in reqwest's error chain by its type.
#[derive(Debug)]
struct NotPublic(String);

impl std::fmt::Display for NotPublic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} is not a public address", self.0)
    }
}

impl std::error::Error for NotPublic {}

/// A resolver that answers only with public addresses.
struct GuardedResolver;

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        let fut: BoxFuture<'static, _> = Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { Box::new(e) })?
                .collect();
            let public: Vec<SocketAddr> = addrs
                .iter()
                .copied()
                .filter(|a| is_public(a.ip()))
                .collect();
            if public.is_empty() {
                // The address itself stays private: it is internal knowledge, and this text
                // reaches status pages and pingback faults.
                let refusal: Box<dyn std::error::Error + Send + Sync> = Box::new(NotPublic(host));
                return Err(refusal);
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        });
        fut
    }
}

/// The fetcher; cheap to share behind an `Arc`.
pub struct Fetcher {
    guarded: reqwest::Client,
    trusted: reqwest::Client,
    allow_private: bool,
    timeout: Duration,
    max_bytes: usize,
    max_redirects: usize,
    per_host: usize,
    global: Semaphore,
    hosts: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// Fetches from outside per host per minute, on the host of every hop.
    host_budget: Option<governor::DefaultKeyedRateLimiter<String>>,
    per_host_per_minute: u32,
    shared: Option<Arc<dyn SharedLimits>>,
    /// Rung when this process gives a shared slot back: its own waiters try again at once
    /// (slots other processes free are found by polling).
    shared_freed: Arc<tokio::sync::Notify>,
    errors: std::sync::atomic::AtomicU64,
}

/// What one fetch holds on its host: this process's permit and, in a fleet, the shared slot.
/// Given back together, the shared slot first, so the next fetch of this process that gets the
/// permit finds the slot free; then the bell rings for this process's waiters.
struct HostHeld {
    local: Option<tokio::sync::OwnedSemaphorePermit>,
    shared: Option<Box<dyn Send + Sync>>,
    freed: Arc<tokio::sync::Notify>,
}

impl Drop for HostHeld {
    fn drop(&mut self) {
        let shared = self.shared.take();
        let freed = shared.is_some();
        drop(shared);
        drop(self.local.take());
        if freed {
            self.freed.notify_waiters();
        }
    }
}

/// `[fetch] per_host` and `per_host_per_minute` kept together with other processes (a fleet on
/// one PostgreSQL store; `store::fleet` counts them). Calls that ask the store block: the
/// fetcher makes them off the async threads. When the store cannot answer, no request is made
/// (the fetch waits, then fails as a timeout, and is retried): politeness over progress.
pub trait SharedLimits: Send + Sync {
    /// A slot on `host` that this process holds already, lasting at least `hold_secs`, if it
    /// has one: taken without asking the store (this never blocks; a fetch asks it on the
    /// async thread before it asks [`SharedLimits::take_slot`] off it).
    fn take_held_slot(&self, host: &str, hold_secs: i64) -> Option<Box<dyn Send + Sync>>;
    /// Takes one of `host`'s `per_host` slots for at most `hold_secs`, if one is free; the
    /// returned guard gives it back when dropped (a drop that never blocks: it is dropped on
    /// the async threads).
    fn take_slot(
        &self,
        host: &str,
        per_host: usize,
        hold_secs: i64,
    ) -> Result<Option<Box<dyn Send + Sync>>, String>;
    /// Counts one request to `host` in this minute; `false` when `per_minute` are spent.
    fn spend_minute(&self, host: &str, per_minute: u32) -> Result<bool, String>;
}

/// A host as the per-minute budgets and the shared limits key it: however it was spelled
/// (case, a trailing dot and the port do not make another host; IP forms are normalized by the
/// URL parser).
fn host_key(url: &Url) -> String {
    url.host_str()
        .unwrap_or("")
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

impl Fetcher {
    pub fn new(cfg: &FetchConfig) -> Fetcher {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let timeout = Duration::from_secs(cfg.timeout_secs);
        let build = |guard: bool| {
            let mut b = reqwest::Client::builder()
                .user_agent(cfg.user_agent.clone())
                .redirect(reqwest::redirect::Policy::none())
                .timeout(timeout)
                .connect_timeout(timeout)
                .pool_max_idle_per_host(cfg.per_host)
                .no_proxy();
            if guard {
                b = b.dns_resolver(Arc::new(GuardedResolver));
            }
            b.build().expect("TLS backend initialises")
        };
        Fetcher {
            guarded: build(!cfg.allow_private_addresses),
            trusted: build(false),
            allow_private: cfg.allow_private_addresses,
            timeout,
            max_bytes: cfg.max_bytes,
            max_redirects: cfg.max_redirects,
            per_host: cfg.per_host,
            global: Semaphore::new(cfg.concurrency),
            hosts: Mutex::new(HashMap::new()),
            host_budget: std::num::NonZeroU32::new(cfg.per_host_per_minute)
                .map(|n| governor::RateLimiter::keyed(governor::Quota::per_minute(n))),
            per_host_per_minute: cfg.per_host_per_minute,
            shared: None,
            shared_freed: Arc::new(tokio::sync::Notify::new()),
            errors: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Keeps `per_host` and `per_host_per_minute` with other processes too (see [`SharedLimits`]).
    pub fn with_shared_limits(mut self, shared: Arc<dyn SharedLimits>) -> Fetcher {
        self.shared = Some(shared);
        self
    }

    /// Waits for one of the fleet's slots on `url`'s host (until the fetch's deadline ends the
    /// wait), and spends the fleet's minute budget for it when the request is from outside.
    async fn hold_host(
        &self,
        url: &Url,
        trust: Trust,
        local: tokio::sync::OwnedSemaphorePermit,
    ) -> Result<HostHeld, FetchError> {
        let mut held = HostHeld {
            local: Some(local),
            shared: None,
            freed: self.shared_freed.clone(),
        };
        let Some(shared) = self.shared.clone() else {
            return Ok(held);
        };
        let host = host_key(url);
        if trust == Trust::Outside && self.per_host_per_minute > 0 {
            let (limits, key, per_minute) =
                (shared.clone(), host.clone(), self.per_host_per_minute);
            let spent = tokio::task::spawn_blocking(move || limits.spend_minute(&key, per_minute))
                .await
                .map_err(|e| FetchError::Network(format!("fleet budget: {e}")))?;
            if !matches!(spent, Ok(true)) {
                let wait_secs = 61 - chrono::Timelike::second(&chrono::Utc::now()) as u64;
                return Err(FetchError::Throttled { host, wait_secs });
            }
        }
        let hold_secs = self.timeout.as_secs() as i64 + 5;
        let mut pause = Duration::from_millis(10);
        loop {
            // Listening before asking: a slot this process frees meanwhile still wakes us.
            let freed = self.shared_freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if let Some(slot) = shared.take_held_slot(&host, hold_secs) {
                held.shared = Some(slot);
                return Ok(held);
            }
            let (limits, key, per_host) = (shared.clone(), host.clone(), self.per_host);
            let taken =
                tokio::task::spawn_blocking(move || limits.take_slot(&key, per_host, hold_secs))
                    .await
                    .map_err(|e| FetchError::Network(format!("fleet slot: {e}")))?;
            match taken {
                Ok(Some(slot)) => {
                    held.shared = Some(slot);
                    return Ok(held);
                }
                Ok(None) => {}
                Err(e) => tracing::debug!(%host, error = %e, "fleet slot not taken; waiting"),
            }
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = freed => {}
            }
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }

    /// Fetch errors so far (for `/metrics`).
    pub fn error_count(&self) -> u64 {
        self.errors.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Checks a URL from outside before any request: scheme, and IP-literal hosts.
    pub fn precheck(&self, url: &Url, trust: Trust) -> Result<(), FetchError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(FetchError::Refused(format!(
                "scheme {:?} is not http(s)",
                url.scheme()
            )));
        }
        let Some(host) = url.host() else {
            return Err(FetchError::Refused("URL has no host".into()));
        };
        if trust == Trust::Outside && !self.allow_private {
            let ip = match host {
                url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
                url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
                url::Host::Domain(_) => None,
            };
            if ip.is_some_and(|ip| !is_public(ip)) {
                return Err(FetchError::Refused("not a public address".into()));
            }
        }
        Ok(())
    }

    /// Counts one fetch against the host's budget ([`host_key`]), the host of this hop: a
    /// redirect is counted where it leads.
    fn spend_host_budget(&self, url: &Url) -> Result<(), FetchError> {
        let Some(budget) = &self.host_budget else {
            return Ok(());
        };
        let host = host_key(url);
        check_key_bounded(budget, &host).map_err(|not_until| {
            use governor::clock::Clock;
            let wait = not_until.wait_time_from(budget.clock().now());
            FetchError::Throttled {
                host,
                wait_secs: wait.as_secs() + 1,
            }
        })
    }

    fn host_slot(&self, url: &Url) -> Arc<Semaphore> {
        let key = format!(
            "{}:{}",
            url.host_str().unwrap_or(""),
            url.port_or_known_default().unwrap_or(0)
        );
        let mut hosts = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
        if hosts.len() > 10_000 {
            // Forget idle hosts so the map cannot grow without bound.
            hosts.retain(|_, s| Arc::strong_count(s) > 1);
        }
        hosts
            .entry(key)
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_host)))
            .clone()
    }

    /// GETs `req.url`, following up to `max_redirects` redirects (each hop checked), within one
    /// deadline, reading at most `max_bytes`.
    pub async fn fetch(&self, req: &Request) -> Result<Fetched, FetchError> {
        let secs = self.timeout.as_secs();
        let result = match tokio::time::timeout(self.timeout, self.fetch_hops(req)).await {
            Ok(r) => r,
            Err(_) => Err(FetchError::Timeout(secs)),
        };
        if result.is_err() {
            self.errors
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        result
    }

    async fn fetch_hops(&self, req: &Request) -> Result<Fetched, FetchError> {
        let mut url = req.url.clone();
        let mut trust = req.trust;
        // A POST is repeated at the new place after a 307 or 308 (they keep the method and the
        // body); any other redirect of a POST is its answer, not a success to follow as a GET.
        let posting = req.body.is_some();
        for hop in 0..=self.max_redirects {
            self.precheck(&url, trust)?;
            let client = if trust == Trust::Outside {
                &self.guarded
            } else {
                &self.trusted
            };
            let mut builder = match &req.body {
                Some((content_type, body)) if posting => {
                    let post = client.post(url.clone()).body(body.clone());
                    // An empty content type means a POST without a body (XRPC procedures).
                    if content_type.is_empty() {
                        post
                    } else {
                        post.header(header::CONTENT_TYPE, *content_type)
                    }
                }
                _ => client.get(url.clone()),
            }
            .header(header::ACCEPT, req.accept);
            for (name, value) in &req.headers {
                builder = builder.header(*name, value);
            }
            if hop == 0 {
                if let Some(etag) = &req.etag {
                    builder = builder.header(header::IF_NONE_MATCH, etag);
                }
                if let Some(lm) = &req.last_modified {
                    builder = builder.header(header::IF_MODIFIED_SINCE, lm);
                }
            }
            if trust == Trust::Outside {
                self.spend_host_budget(&url)?;
            }
            // The host's slot first: waiting for a slow host must not hold a global slot idle.
            // This process's slot, then the fleet's.
            let local = self
                .host_slot(&url)
                .acquire_owned()
                .await
                .expect("semaphore never closed");
            let _host = self.hold_host(&url, trust, local).await?;
            let _global = self.global.acquire().await.expect("semaphore never closed");
            let resp = builder
                .send()
                .await
                .map_err(|e| map_error(&e, self.timeout.as_secs()))?;
            let status = resp.status().as_u16();
            if posting && !matches!(status, 307 | 308) {
                return self.read_response(resp, url).await;
            }
            if (300..400).contains(&status) && status != 304 {
                let location = resp
                    .headers()
                    .get(header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| {
                        FetchError::Network(format!("{status} redirect without Location"))
                    })?;
                url = url.join(location).map_err(|e| {
                    FetchError::Refused(format!("bad redirect Location {location:?}: {e}"))
                })?;
                // A configured URL that redirects elsewhere leads outside what the operator wrote.
                if trust == Trust::Configured && url.host_str() != req.url.host_str() {
                    trust = Trust::Outside;
                }
                continue;
            }
            return self.read_response(resp, url).await;
        }
        Err(FetchError::TooManyRedirects(self.max_redirects))
    }

    async fn read_response(
        &self,
        mut resp: reqwest::Response,
        final_url: Url,
    ) -> Result<Fetched, FetchError> {
        let headers = resp.headers().clone();
        let text = |name: header::HeaderName| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        if let Some(len) = resp.content_length()
            && len as usize > self.max_bytes
            && !headers.contains_key(header::CONTENT_ENCODING)
        {
            return Err(FetchError::TooLarge(self.max_bytes));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| map_error(&e, self.timeout.as_secs()))?
        {
            if body.len() + chunk.len() > self.max_bytes {
                return Err(FetchError::TooLarge(self.max_bytes));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched {
            status: resp.status().as_u16(),
            content_type: text(header::CONTENT_TYPE),
            etag: text(header::ETAG),
            last_modified: text(header::LAST_MODIFIED),
            retry_after: headers.get(header::RETRY_AFTER).and_then(parse_retry_after),
            max_age: headers.get(header::CACHE_CONTROL).and_then(parse_max_age),
            final_url,
            headers,
            body,
        })
    }
}

fn map_error(e: &reqwest::Error, secs: u64) -> FetchError {
    if e.is_timeout() {
        return FetchError::Timeout(secs);
    }
    let mut chain = String::new();
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(s) = source {
        if let Some(refusal) = s.downcast_ref::<NotPublic>() {
            return FetchError::Refused(refusal.to_string());
        }
        chain.push_str(&s.to_string());
        chain.push_str(": ");
        source = s.source();
    }
    let chain = chain.trim_end_matches(": ").to_string();
    if chain.contains("decoding response body") || chain.contains("error decoding") {
        return FetchError::Network(format!("bad body encoding ({chain})"));
    }
    FetchError::Network(chain)
}

/// Keys a keyed rate limiter holds before it forgets those whose budget is whole again.
const LIMITER_KEYS_MAX: usize = 10_000;

/// Checks `key` against a keyed rate limiter that never grows without bound: governor keeps
/// every key it has seen until told otherwise, so once it holds [`LIMITER_KEYS_MAX`] keys the
/// ones whose budget has recovered are dropped (a flood of client addresses or source hosts
/// costs memory for a minute, not for the life of the process). Used by the fetcher's host
/// budgets and the receivers' limits alike.
pub fn check_key_bounded<K: std::hash::Hash + Eq + Clone>(
    limit: &governor::DefaultKeyedRateLimiter<K>,
    key: &K,
) -> Result<(), governor::NotUntil<governor::clock::QuantaInstant>> {
    if limit.len() > LIMITER_KEYS_MAX {
        limit.retain_recent();
        limit.shrink_to_fit();
    }
    limit.check_key(key)
}

/// `Retry-After` as seconds: a delta, or an HTTP date in any of its three forms (IMF-fixdate,
/// RFC 850, asctime).
/// Any number of digits is read (and clamped: see [`Wait`]), so an absurd value is a long
/// wait, never an overflow.
pub fn parse_retry_after(v: &HeaderValue) -> Option<Wait> {
    let s = v.to_str().ok()?.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Wait::secs(s.parse::<u64>().unwrap_or(u64::MAX)));
    }
    let at = httpdate::parse_http_date(s).ok()?;
    Some(Wait::secs(
        at.duration_since(std::time::SystemTime::now())
            .map_or(0, |d| d.as_secs()),
    ))
}

fn parse_max_age(v: &HeaderValue) -> Option<Wait> {
    v.to_str().ok()?.split(',').find_map(|d| {
        let digits = d.trim().strip_prefix("max-age=")?.trim();
        (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
            .then(|| Wait::secs(digits.parse::<u64>().unwrap_or(u64::MAX)))
    })
}

/// Decodes a body to text: charset from the `Content-Type` header, then a BOM, then an HTML
/// `<meta>` in the first 1024 bytes, else UTF-8 (windows-1252 if that is not valid UTF-8).
/// Invalid bytes become U+FFFD; this never fails.
pub fn decode_text(body: &[u8], content_type: Option<&str>) -> String {
    let (encoding, bom) = body_encoding(body, content_type);
    decode_after_bom(encoding, &body[bom..])
}

/// [`decode_text`] taking the body: a UTF-8 page (most are) becomes the string without a copy.
pub fn decode_text_owned(body: Vec<u8>, content_type: Option<&str>) -> String {
    match body_encoding(&body, content_type) {
        (encoding, 0) if encoding == encoding_rs::UTF_8 => String::from_utf8(body)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
        (encoding, bom) => decode_after_bom(encoding, &body[bom..]),
    }
}

fn decode_after_bom(encoding: &'static encoding_rs::Encoding, bytes: &[u8]) -> String {
    encoding.decode_without_bom_handling(bytes).0.into_owned()
}

/// The encoding a body is in, and the length of its byte-order mark: a BOM when the header
/// names no charset, else the header's charset, a `<meta>` one, or UTF-8 when the bytes are
/// UTF-8 (windows-1252 when not).
fn body_encoding(
    body: &[u8],
    content_type: Option<&str>,
) -> (&'static encoding_rs::Encoding, usize) {
    let from_header = content_type
        .and_then(charset_param)
        .and_then(|c| encoding_rs::Encoding::for_label(c.as_bytes()));
    let bom = encoding_rs::Encoding::for_bom(body);
    if let Some((enc, bom_len)) = bom
        && from_header.is_none()
    {
        return (enc, bom_len);
    }
    let encoding = from_header
        .or_else(|| sniff_meta_charset(body))
        .unwrap_or_else(|| {
            if std::str::from_utf8(body).is_ok() {
                encoding_rs::UTF_8
            } else {
                encoding_rs::WINDOWS_1252
            }
        });
    // A <meta> claiming UTF-16 in a byte-oriented document is a lie the HTML standard overrides.
    let encoding = if (encoding == encoding_rs::UTF_16LE || encoding == encoding_rs::UTF_16BE)
        && bom.is_none()
    {
        encoding_rs::UTF_8
    } else {
        encoding
    };
    // decode_with_bom_removal: a BOM of the chosen encoding is dropped.
    let bom_len = match bom {
        Some((enc, len)) if enc == encoding => len,
        _ => 0,
    };
    (encoding, bom_len)
}

fn charset_param(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| v.trim().trim_matches(['"', '\'']).to_string())
    })
}

fn sniff_meta_charset(body: &[u8]) -> Option<&'static encoding_rs::Encoding> {
    let head = &body[..body.len().min(1024)];
    let lower: Vec<u8> = head.iter().map(u8::to_ascii_lowercase).collect();
    let at = lower.windows(8).position(|w| w == b"charset=")?;
    let rest = &head[at + 8..];
    let rest = rest
        .strip_prefix(b"\"")
        .or_else(|| rest.strip_prefix(b"'"))
        .unwrap_or(rest);
    let end = rest
        .iter()
        .position(|b| matches!(b, b'"' | b'\'' | b';' | b'>' | b' ' | b'/'))
        .unwrap_or(rest.len());
    encoding_rs::Encoding::for_label(&rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_a_taken_body_reads_as_decoding_a_borrowed_one() {
        let bodies: Vec<(Vec<u8>, Option<&str>)> = vec![
            ("plain <a>ünïcode</a>".as_bytes().to_vec(), None),
            (b"\xEF\xBB\xBFwith a BOM".to_vec(), None),
            (
                b"\xEF\xBB\xBFwith a BOM and a header".to_vec(),
                Some("text/html; charset=utf-8"),
            ),
            (b"<meta charset=iso-8859-1>M\xFCnchen".to_vec(), None),
            (
                b"M\xFCnchen".to_vec(),
                Some("text/html; charset=windows-1252"),
            ),
            (b"\xFF\xFEh\x00i\x00".to_vec(), None),
            (b"<meta charset=utf-16>not really".to_vec(), None),
            (
                b"broken \xC3 utf-8".to_vec(),
                Some("text/html; charset=utf-8"),
            ),
        ];
        for (body, content_type) in bodies {
            assert_eq!(
                decode_text_owned(body.clone(), content_type),
                decode_text(&body, content_type),
                "{body:?}"
            );
        }
        assert_eq!(decode_text(b"\xEF\xBB\xBFok", None), "ok");
        assert_eq!(decode_text(b"M\xFCnchen", None), "München");
    }

    #[test]
    fn private_ranges_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fc00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "::10.9.9.9",
            "224.0.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "93.184.216.34",
            "2606:2800:220:1:248:1893:25c8:1946",
            "1.1.1.1",
        ] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn charsets_from_header_bom_and_meta() {
        let latin1 = b"<p>Gr\xfc\xdfe aus M\xfcnchen</p>";
        assert_eq!(
            decode_text(latin1, Some("text/html; charset=ISO-8859-1")),
            "<p>Grüße aus München</p>"
        );
        let meta = b"<meta charset=\"windows-1252\"><p>\x93quoted\x94</p>";
        assert!(decode_text(meta, None).contains("\u{201c}quoted\u{201d}"));
        let utf16: Vec<u8> = [0xff, 0xfe]
            .into_iter()
            .chain("<p>hé</p>".encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        assert_eq!(decode_text(&utf16, None), "<p>hé</p>");
        assert_eq!(
            decode_text(b"ok \xff", Some("text/html; charset=utf-8")),
            "ok \u{fffd}"
        );
    }

    #[test]
    fn retry_after_reads_seconds() {
        assert_eq!(
            parse_retry_after(&HeaderValue::from_static("120")),
            Some(Wait::secs(120))
        );
        assert_eq!(
            parse_max_age(&HeaderValue::from_static("public, max-age=600")),
            Some(Wait::secs(600))
        );
        // Absurd values are the longest wait honoured, never an overflow.
        for absurd in ["9000000000000", "99999999999999999999999999"] {
            assert_eq!(
                parse_retry_after(&HeaderValue::from_static(absurd)),
                Some(Wait::secs(Wait::MAX_SECS))
            );
        }
        assert_eq!(
            parse_max_age(&HeaderValue::from_static("max-age=99999999999999999999")),
            Some(Wait::secs(Wait::MAX_SECS))
        );
        // The three HTTP date forms; a date in the past means now.
        for past in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(
                parse_retry_after(&HeaderValue::from_static(past)),
                Some(Wait::secs(0)),
                "{past}"
            );
        }
        let soon = httpdate::fmt_http_date(
            std::time::SystemTime::now() + std::time::Duration::from_secs(120),
        );
        let wait = parse_retry_after(&HeaderValue::from_str(&soon).unwrap()).unwrap();
        assert!((118..=120).contains(&wait.as_secs()), "{wait}");
    }
}
