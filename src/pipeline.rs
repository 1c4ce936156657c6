//! lease → fetch → verify → moderate → store → ack: the spine every producer shares.
//!
//! Producers call [`Context::submit`], which validates a candidate synchronously (so receivers
//! can answer 400 or a fault at once) and commits it to the durable queue. The worker
//! ([`run_worker`]) and the synchronous paths (`pingback.ping`, `backfeed submit`, `crawl`) all
//! end in [`Context::process`], which turns one job into an [`Outcome`] and applies it: the
//! outcome, not the producer, decides what happens to the store, so a webmention and a crawled
//! feed item that say the same thing are treated the same.
//!
//! Rules kept here: a transient failure never deletes (it retries with backoff); only a 410, a
//! second 404 in a row, or a page fetched fine without the link deletes; a re-sent pair keeps its
//! moderation state (the store enforces that part).

use crate::config::Config;
use crate::fetch::{FetchError, Fetcher, Request, Trust};
use crate::model::OrLog;
use crate::model::{
    Extracted, Kind, Outcome, Status, host_in_domain, host_of, match_key, now_rfc3339,
};
use crate::store::{Applied, Candidate, Decision, Enqueued, GroupCommit, Job, PostRef, Store};
use crate::verify;
use serde::{Deserialize, Serialize};

use std::sync::{Arc, Mutex};
use tokio::sync::Notify;
use url::Url;

/// Tries before a never-verified candidate that keeps failing transiently is given up.
pub const MAX_ATTEMPTS: i64 = 6;

/// Extra facts a producer hands along with a candidate.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Hint {
    /// Trackback fields, used where the page gives none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub excerpt: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blog_name: Option<String>,
    /// HTML the candidate was found in (a feed item's content): evidence when the page itself
    /// does not show the link.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence_html: Option<String>,
    /// A social API record already checked by its adapter: the record is the evidence and the
    /// social site's page is not fetched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<RecordEvidence>,
}

/// What a social adapter read from an API record that links to the post.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RecordEvidence {
    pub mention_type: Option<String>,
    pub title: Option<String>,
    pub author_name: Option<String>,
    pub author_url: Option<String>,
    pub author_photo: Option<String>,
    pub published: Option<String>,
    pub text: Option<String>,
    pub content_html: Option<String>,
}

/// Why a candidate was refused before it was queued. Each receiver maps these to its own
/// protocol's answer (a fault code, a 400, a trackback error).
#[derive(Clone, Debug, PartialEq)]
pub enum Rejection {
    InvalidSource(String),
    InvalidTarget(String),
    TargetNotFound(String),
    /// The target could not be checked now (our own site unreachable): try again later.
    TargetUnavailable,
    SameResource,
    Blocked(String),
    Internal(String),
}

impl Rejection {
    pub fn reason(&self) -> String {
        match self {
            Rejection::InvalidSource(r)
            | Rejection::InvalidTarget(r)
            | Rejection::TargetNotFound(r) => r.clone(),
            Rejection::SameResource => "source and target are the same".into(),
            Rejection::TargetUnavailable => {
                "the target could not be checked just now; try again later".into()
            }
            Rejection::Blocked(d) => format!("source domain {d} is blocked"),
            Rejection::Internal(r) => format!("internal error: {r}"),
        }
    }

    /// webmention.io's error names.
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::InvalidSource(_) => "invalid_source",
            Rejection::InvalidTarget(_) => "invalid_target",
            Rejection::TargetNotFound(_) => "target_not_found",
            Rejection::TargetUnavailable => "temporarily_unavailable",
            Rejection::SameResource => "invalid_request",
            Rejection::Blocked(_) => "blocked",
            Rejection::Internal(_) => "internal_error",
        }
    }
}

impl From<crate::store::StoreError> for Rejection {
    fn from(e: crate::store::StoreError) -> Self {
        Rejection::Internal(e.to_string())
    }
}

/// Everything a running backfeed shares: config, store, fetcher, the worker's wake-up bell.
pub struct Context {
    pub cfg: Config,
    pub store: Arc<Store>,
    /// Receivers' enqueues, committed in groups.
    pub group_commit: GroupCommit,
    pub fetcher: Fetcher,
    pub wake: Notify,
    /// Rung after every processed job, for those waiting on one (a pingback the worker holds).
    pub job_finished: Notify,
    pub metrics: crate::metrics::Metrics,
    /// Session tokens of social APIs, kept in memory only: secrets never reach the store.
    pub credentials: Mutex<std::collections::HashMap<String, String>>,
    /// Owner of the leases taken for synchronous checks (pingback, `submit`).
    pub lease_owner: String,
    /// Where pages are parsed: one thread per core, fed from a queue (see `verify::pool`).
    /// Parsing is CPU work, so more at once would not be faster, only hold more trees in
    /// memory (each bounded by the parser's budget).
    pub parse_pool: verify::pool::ParsePool,
}

/// The result of processing one job.
#[derive(Clone, Debug)]
pub struct Processed {
    pub outcome: Outcome,
    /// The mention's status afterwards; `None` while it waits for a retry.
    pub status: Option<Status>,
}

impl Context {
    pub fn new(cfg: Config) -> Result<Context, crate::store::StoreError> {
        let store = Arc::new(Store::open(&cfg.store.path)?);
        store.set_notify_channels(&crate::notify::channels(&cfg))?;
        let group_commit = GroupCommit::start(store.clone());
        let fetcher = Fetcher::new(&cfg.fetch);
        Ok(Context {
            cfg,
            store,
            group_commit,
            fetcher,
            wake: Notify::new(),
            job_finished: Notify::new(),
            metrics: crate::metrics::Metrics::default(),
            credentials: Mutex::default(),
            lease_owner: new_lease_owner(),
            parse_pool: verify::pool::ParsePool::per_core(),
        })
    }

    /// The site's names, for feed metadata.
    pub fn site(&self) -> crate::publish::Site<'_> {
        crate::publish::Site {
            title: &self.cfg.site.title,
            home_url: self.cfg.site.base_url.as_str(),
            public_url: self.cfg.server.public_url.as_str(),
        }
    }

    /// The domain block that covers `url`'s host, from the config or the store. A store that
    /// cannot answer is an error, never "nothing is blocked": blocks fail closed.
    pub fn blocked_domain(&self, url: &str) -> Result<Option<String>, crate::store::StoreError> {
        let Some(host) = host_of(url) else {
            return Ok(None);
        };
        let stored = self.store.blocked_domains()?;
        Ok(self
            .cfg
            .moderation
            .blocked_domains
            .iter()
            .chain(stored.iter())
            .find(|d| host_in_domain(&host, d))
            .cloned())
    }

    /// The post a target names: a known post, or a page under the site that exists (learned
    /// on the spot, so a webmention for a post newer than the last crawl still lands).
    pub async fn resolve_target(&self, target: &str) -> Result<PostRef, Rejection> {
        let url = Url::parse(target.trim())
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
            .ok_or_else(|| {
                Rejection::InvalidTarget(format!("target {target:?} is not an http(s) URL"))
            })?;
        if !self.cfg.is_under_site(&url) {
            return Err(Rejection::InvalidTarget(format!(
                "target {target} is not under this site ({})",
                self.cfg.site.base_url
            )));
        }
        let key = match_key(target)
            .ok_or_else(|| Rejection::InvalidTarget("target has no host".into()))?;
        if let Some(post) = self.store.post_by_match_key(&key)? {
            return Ok(post);
        }
        if match_key(self.cfg.site.base_url.as_str()).as_deref() == Some(key.as_str()) {
            return Err(Rejection::InvalidTarget(
                "the site's home page is not a post".into(),
            ));
        }
        let mut page_url = url.clone();
        page_url.set_fragment(None);
        let fetched = self
            .fetcher
            .fetch(&Request::get(page_url.clone(), Trust::Configured))
            .await
            .map_err(|e| {
                // Our own site is down, or slow: a temporary condition the sender should retry,
                // and no internal error of ours reaches a stranger.
                tracing::warn!(post = %target, error = %e, "target could not be checked now");
                Rejection::TargetUnavailable
            })?;
        if fetched.status == 404 || fetched.status == 410 {
            return Err(Rejection::TargetNotFound(format!(
                "target {target} does not exist ({})",
                fetched.status
            )));
        }
        if fetched.status == 429 || fetched.status >= 500 {
            tracing::warn!(post = %target, status = fetched.status, "target could not be checked now");
            return Err(Rejection::TargetUnavailable);
        }
        if !(200..300).contains(&fetched.status) {
            return Err(Rejection::TargetNotFound(format!(
                "target {target} answered {}",
                fetched.status
            )));
        }
        // Outsiders must not grow the posts table: a page not learned from the site's feeds
        // becomes a post only when the site's own page says it is one.
        let about = self
            .parse_pool
            .run(move || {
                let html =
                    crate::fetch::decode_text_owned(fetched.body, fetched.content_type.as_deref());
                verify::Page::parse(&html, &fetched.final_url)
                    .ok()
                    .map(|page| page.post_facts())
            })
            .await
            .ok()
            .flatten()
            .unwrap_or_default();
        match about.canonical.as_deref().and_then(match_key) {
            Some(canonical) if canonical == key => {}
            Some(canonical) => {
                // A variant of a known post (a query, a tracking path) names that post.
                return match self.store.post_by_match_key(&canonical)? {
                    Some(post) => Ok(post),
                    None => Err(Rejection::InvalidTarget(format!(
                        "target {target} is not a post of this site (its canonical URL is another page)"
                    ))),
                };
            }
            None if url.query().is_some() || !about.looks_like_post => {
                return Err(Rejection::InvalidTarget(format!(
                    "target {target} is not a known post of this site (posts are learned from its feeds and sitemaps)"
                )));
            }
            None => {}
        }
        Ok(self
            .group_commit
            .add_post_from_page(page_url.to_string(), key, about.title)
            .await?)
    }

    /// Validates a candidate and commits it to the queue. Returns the enqueue result and the
    /// post. Nothing is fetched from the source here.
    pub async fn submit(
        &self,
        source: &str,
        target: &str,
        kind: Kind,
        hint: Option<&Hint>,
    ) -> Result<(Enqueued, PostRef), Rejection> {
        let source = source.trim();
        // A URL parser drops tabs and newlines silently, but the source is stored as given.
        if source.chars().any(char::is_control) {
            return Err(Rejection::InvalidSource(
                "source contains control characters".into(),
            ));
        }
        let src = Url::parse(source)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
            .ok_or_else(|| {
                Rejection::InvalidSource(format!("source {source:?} is not an http(s) URL"))
            })?;
        if match_key(source) == match_key(target) {
            return Err(Rejection::SameResource);
        }
        // An IP literal the trust rules refuse can be answered now; names that resolve to
        // private addresses are caught when the source is fetched.
        if let Err(e) = self.fetcher.precheck(&src, Trust::Outside) {
            // Said so that someone testing on their own network knows which switch it is.
            let rejection = Rejection::InvalidSource(format!(
                "source {e} (private addresses are refused; [fetch] allow_private_addresses = true allows them, for testing only)"
            ));
            self.log(source, target, kind, "refused", &rejection.reason())
                .await;
            return Err(rejection);
        }
        let blocked = self.blocked_domain(src.as_str()).inspect_err(|e| {
            tracing::error!(error = %e, "cannot read blocked domains; refusing the candidate for now");
        })?;
        if let Some(domain) = blocked {
            self.log(
                source,
                target,
                kind,
                "refused",
                &format!("blocked domain {domain}"),
            )
            .await;
            return Err(Rejection::Blocked(domain));
        }
        let post = match self.resolve_target(target).await {
            Ok(post) => post,
            Err(rejection) => {
                self.log(source, target, kind, "refused", &rejection.reason())
                    .await;
                return Err(rejection);
            }
        };
        let candidate = Candidate {
            source: source.to_string(),
            target: post.url.clone(),
            target_key: match_key(&post.url).unwrap_or_default(),
            post_id: Some(post.id),
            kind,
            hint: hint.map(|h| serde_json::to_string(h).unwrap_or_default()),
        };
        let enqueued = self.group_commit.enqueue(candidate).await?;
        self.wake.notify_one();
        Ok((enqueued, post))
    }

    /// Logs a receiver's decision, and writes it to the decision log through the committer
    /// (off the async threads).
    async fn log(&self, source: &str, target: &str, kind: Kind, outcome: &str, reason: &str) {
        // `post`, not `target`: JSON logs already carry tracing's own `target` (the module).
        tracing::info!(
            source = %source,
            post = %target,
            kind = %kind.as_str(),
            outcome = %outcome,
            reason = %reason,
            "decision"
        );
        let d = Decision {
            at: now_rfc3339(),
            source: source.into(),
            target: target.into(),
            kind: kind.as_str().into(),
            outcome: outcome.into(),
            reason: reason.into(),
        };
        if let Err(e) = self.group_commit.log_decision(d).await {
            tracing::error!(error = %e, "could not write the decision log");
        }
    }

    /// Fetches, verifies and applies one job. Never panics on input; store errors are logged.
    pub async fn process(&self, job: &Job) -> Processed {
        let hint: Hint = match job.hint.as_deref().map(serde_json::from_str) {
            None => Hint::default(),
            Some(Ok(hint)) => hint,
            Some(Err(e)) => {
                tracing::warn!(mention = job.mention_id, error = %e, "stored hint does not decode; checking without it");
                Hint::default()
            }
        };
        let mut outcome = self.check(job, &hint).await;
        if let Outcome::Verified(x) = &mut outcome {
            verify::bound_extracted(x);
            let kind_of = x.mention_type.unwrap_or(crate::model::MentionType::Mention);
            // The accounts of [site] own_profiles and those the home page names (rel=me).
            let from_home_page = self.store.site_profiles().unwrap_or_default();
            let is_own = |url: &str| {
                self.cfg.site.is_own(url)
                    || crate::model::under_any_profile(
                        url,
                        from_home_page.iter().map(String::as_str),
                    )
            };
            let own_copy = is_own(&job.source) || x.author.url.as_deref().is_some_and(is_own);
            if own_copy {
                // The blogger's own syndicated copy (POSSE) comes back through the social
                // sources or Brid.gy: it is the post itself, not a mention of it. Replies
                // others write on that copy are theirs, and count.
                outcome = Outcome::Refused("own syndicated copy".into());
            } else if !self.cfg.moderation.collects(kind_of) {
                // The blogger keeps no mentions of this type: refused, with nothing of it kept.
                outcome = Outcome::Refused("type not collected".into());
            }
        }
        self.metrics.count_outcome(outcome.word());
        let reason = outcome.reason();
        let mut decision = Decision {
            at: now_rfc3339(),
            source: job.source.clone(),
            target: job.target.clone(),
            kind: job.kind.as_str().into(),
            outcome: outcome.word().into(),
            reason: reason.clone(),
        };
        let applied = self.applied(job, &outcome, &mut decision);
        // Written with other jobs' outcomes in one transaction (each in its own savepoint).
        let stored = self
            .group_commit
            .apply(job.clone(), applied, decision)
            .await;
        let status = match stored {
            Ok(s) => s,
            Err(e) if e.is_stale_lease() => {
                tracing::warn!(error = %e, mention = job.mention_id, source = %job.source, "outcome refused: this job's lease expired and another loop took it over");
                None
            }
            Err(e) => {
                tracing::error!(error = %e, mention = job.mention_id, "could not store the outcome; the job stays queued");
                None
            }
        };
        self.job_finished.notify_waiters();
        tracing::info!(
            source = %job.source, post = %job.target, kind = %job.kind.as_str(),
            outcome = %outcome.word(), status = %status.map(|s| s.as_str()).unwrap_or("retry"), reason = %reason,
            "decision"
        );
        Processed { outcome, status }
    }

    /// What the store is to write for `outcome`, by the pipeline's rules: when a failure is
    /// given up on, and what a 404 means for a mention that was verified before.
    fn applied(&self, job: &Job, outcome: &Outcome, decision: &mut Decision) -> Applied {
        match outcome {
            Outcome::Verified(x) => Applied::Verified {
                extracted: x.clone(),
                hold_new: self.cfg.moderation.holds(),
            },
            Outcome::Gone(_) | Outcome::NoLink(_) => Applied::Refused { delete: true },
            Outcome::Refused(_) => Applied::Refused { delete: false },
            Outcome::NotFound(_) if job.ever_verified => Applied::NotFound,
            Outcome::NotFound(_) => Applied::Refused { delete: false },
            Outcome::Transient(_) if job.attempts + 1 >= MAX_ATTEMPTS => {
                if job.ever_verified {
                    Applied::Unchanged
                } else {
                    decision.reason =
                        format!("gave up after {MAX_ATTEMPTS} tries: {}", decision.reason);
                    Applied::Refused { delete: false }
                }
            }
            Outcome::Transient(_) => Applied::RetryIn(retry_delay_secs(job.attempts)),
            Outcome::Deferred(_, wait_secs) => Applied::DeferFor(*wait_secs as i64),
            Outcome::Unchanged => Applied::Unchanged,
        }
    }

    async fn check(&self, job: &Job, hint: &Hint) -> Outcome {
        match self.blocked_domain(&job.source) {
            Ok(Some(domain)) => return Outcome::Refused(format!("blocked domain {domain}")),
            Ok(None) => {}
            Err(e) => return Outcome::Transient(format!("cannot read blocked domains: {e}")),
        }
        let Some(post_key) = match_key(&job.target) else {
            return Outcome::Refused(format!("target {} is not a URL", job.target));
        };
        let keys = vec![post_key];
        if let Some(record) = &hint.record {
            return Outcome::Verified(Box::new(record_extracted(record)));
        }
        let Ok(url) = Url::parse(&job.source) else {
            return Outcome::Refused(format!("source {:?} is not a URL", job.source));
        };
        let mut req = Request::get(url, Trust::Outside);
        if job.conditional {
            let state = self.store.fetch_state(&job.source).unwrap_or_default();
            req.etag = state.etag;
            req.last_modified = state.last_modified;
        }
        let fetched = match self.fetcher.fetch(&req).await {
            Ok(f) => f,
            Err(FetchError::Throttled { host, wait_secs }) => {
                return Outcome::Deferred(format!("fetch budget for {host} spent"), wait_secs);
            }
            Err(e) if e.is_transient() => {
                return Outcome::Transient(format!("fetching source: {e}"));
            }
            Err(e) => return Outcome::Refused(format!("fetching source: {e}")),
        };
        let status = fetched.status;
        if job.conditional && status == 304 {
            return Outcome::Unchanged;
        }
        match status {
            200..=299 => {}
            410 => return Outcome::Gone("source answers 410 Gone".into()),
            404 => return Outcome::NotFound("source answers 404 Not Found".into()),
            429 | 500..=599 => {
                let wait = fetched
                    .retry_after
                    .map(|s| format!(", retry after {s} s"))
                    .unwrap_or_default();
                return Outcome::Transient(format!("source answers {status}{wait}"));
            }
            _ if job.ever_verified => {
                return Outcome::Transient(format!("source answers {status}"));
            }
            _ => return Outcome::NotFound(format!("source answers {status}")),
        }
        if job.conditional && (fetched.etag.is_some() || fetched.last_modified.is_some()) {
            let mut state = self.store.fetch_state(&job.source).unwrap_or_default();
            state.etag = fetched.etag.clone();
            state.last_modified = fetched.last_modified.clone();
            state.last_ok = Some(now_rfc3339());
            self.group_commit
                .put_fetch_state(job.source.clone(), state)
                .await
                .or_log("fetch validators not kept");
        }
        let redirected_to =
            (fetched.final_url.as_str() != job.source).then(|| fetched.final_url.to_string());
        // Parsing is CPU work (milliseconds for a large page): keep it off the async runtime's
        // threads, so HTTP handling never waits behind it.
        let evidence = hint.evidence_html.clone();
        let verified = self
            .parse_pool
            .run(move || {
                let page_url = fetched.final_url.clone();
                let outcome = verify_body(fetched, &keys);
                match (&outcome, evidence) {
                    // The page does not show it, but the feed item we found it in does.
                    (Outcome::NoLink(_), Some(evidence)) => {
                        let from_item = verify::verify_html(&evidence, &page_url, &keys);
                        if matches!(from_item, Outcome::Verified(_)) {
                            from_item
                        } else {
                            outcome
                        }
                    }
                    _ => outcome,
                }
            })
            .await;
        let mut outcome = match verified {
            Ok(outcome) => outcome,
            Err(e) => Outcome::Transient(format!("verification task failed: {e}")),
        };
        if let Outcome::Verified(x) = &mut outcome {
            x.final_url = redirected_to;
            if x.author.name.is_none()
                && let Some(author_page) = x.author.url.clone()
            {
                self.authorship(x, &author_page).await;
            }
            if x.author.name.is_none() {
                x.author.name = x.fallback_author_name.clone();
            }
            fill_from_hint(x, hint);
        }
        outcome
    }

    /// The authorship algorithm's last step: the entry named its author only by URL, so that
    /// page's representative h-card names them. Fetched like any source (guarded, capped).
    async fn authorship(&self, x: &mut Extracted, author_page: &str) {
        let Ok(url) = Url::parse(author_page) else {
            return;
        };
        let fetched = match self.fetcher.fetch(&Request::get(url, Trust::Outside)).await {
            Ok(f) if (200..300).contains(&f.status) => f,
            _ => return,
        };
        let card = self
            .parse_pool
            .run(move || {
                let html =
                    crate::fetch::decode_text_owned(fetched.body, fetched.content_type.as_deref());
                verify::representative_hcard(&html, &fetched.final_url)
            })
            .await
            .ok()
            .flatten();
        if let Some(card) = card {
            x.author.name = card.name;
            x.author.photo = x.author.photo.take().or(card.photo);
            x.author.url = card.url.or(x.author.url.take());
        }
    }
}

/// A lease owner for one job loop (see [`crate::store::new_owner`]): never shared by two loops.
pub fn new_lease_owner() -> String {
    crate::store::new_owner()
}

/// Backoff for transient failures: 1, 2, 4 … minutes, at most about four hours.
pub fn retry_delay_secs(attempts: i64) -> i64 {
    60 * (1 << attempts.clamp(0, 8))
}

/// Checks a fetched body by its media type.
pub fn verify_body(fetched: crate::fetch::Fetched, keys: &[String]) -> Outcome {
    let media = fetched
        .content_type
        .as_deref()
        .unwrap_or("text/html")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let text = crate::fetch::decode_text_owned(fetched.body, fetched.content_type.as_deref());
    if media.contains("html")
        || media.ends_with("/xml")
        || media.ends_with("+xml")
        || media.is_empty()
    {
        return verify::verify_html(&text, &fetched.final_url, keys);
    }
    if media == "text/plain" || media.contains("json") {
        // Plain text and JSON: a URL in the text that normalizes to the post.
        let linked = text
            .split(|c: char| c.is_whitespace() || matches!(c, '"' | '<' | '>' | '\'' | '(' | ')'))
            .filter(|w| w.starts_with("http"))
            .any(|w| {
                match_key(w.trim_end_matches(['.', ',', ';'])).is_some_and(|k| keys.contains(&k))
            });
        return if linked {
            Outcome::Verified(Box::new(Extracted {
                mention_type: Some(crate::model::MentionType::Mention),
                excerpt: Some(crate::text::truncate(&crate::text::collapse(&text), 300)),
                ..Default::default()
            }))
        } else {
            Outcome::NoLink(format!("no link to the post in the {media} body"))
        };
    }
    Outcome::NoLink(format!("source is {media}, not a page that can link"))
}

fn fill_from_hint(x: &mut Extracted, hint: &Hint) {
    if x.title.is_none() {
        x.title = hint.title.clone();
    }
    if x.excerpt.is_none() {
        x.excerpt = hint.excerpt.clone();
    }
    if let Some(blog) = &hint.blog_name
        && x.author
            .name
            .as_deref()
            .is_none_or(|n| host_of(&format!("http://{n}/")).as_deref() == Some(n))
    {
        x.author.name = Some(blog.clone());
    }
}

fn record_extracted(r: &RecordEvidence) -> Extracted {
    Extracted {
        mention_type: r
            .mention_type
            .as_deref()
            .and_then(crate::model::MentionType::parse),
        title: r.title.clone(),
        author: crate::model::Author {
            name: r.author_name.clone(),
            url: r.author_url.clone(),
            photo: r.author_photo.clone(),
        },
        published: r.published.clone(),
        excerpt: r
            .text
            .as_deref()
            .map(|t| crate::text::truncate(&crate::text::collapse(t), 300)),
        content_html: r.content_html.clone(),
        ..Default::default()
    }
}

/// Processes every due job now, `concurrency` at a time, calling `progress` after each, and
/// returns when nothing is due or in flight. Jobs waiting for a later retry are left for later.
pub async fn drain(ctx: &Arc<Context>, mut progress: impl FnMut(&Processed)) -> Vec<Processed> {
    let mut results = Vec::new();
    work(ctx, None, |p| {
        progress(&p);
        results.push(p);
    })
    .await;
    results
}

/// The background worker of `serve`: processes due jobs as they come until `shutdown` fires.
pub async fn run_worker(ctx: Arc<Context>, shutdown: crate::shutdown::Shutdown) {
    work(&ctx, Some(shutdown), |_| {}).await;
}

/// The one job loop behind [`drain`] and [`run_worker`]: each job is its own task (so parsing
/// uses every core), refilled as soon as one finishes, `concurrency` at most. With a shutdown
/// signal it runs until the signal, waiting for work; without one it stops when idle. On the
/// way out, jobs still in flight get their fetch deadline to finish; leases of any that could
/// not are given back, so they are due again at once on the next start. Each loop leases under
/// its own owner id and gives back only its own leases: a drain that ends never frees a job
/// another loop is still working on.
async fn work(
    ctx: &Arc<Context>,
    shutdown: Option<crate::shutdown::Shutdown>,
    mut done: impl FnMut(Processed),
) {
    let limit = ctx.cfg.fetch.concurrency.max(1);
    let stopping = || shutdown.as_ref().is_some_and(|s| s.is_triggered());
    // Leasing is a write transaction: refill in batches rather than one slot at a time.
    let refill = (limit / 4).max(1);
    let owner = new_lease_owner();
    let per_host = ctx.cfg.fetch.per_host;
    // Leases are renewed every third of their length while jobs are in flight: a job whose
    // loop stopped renewing (a crash, a stall) is taken over once its lease expires, and a
    // stalled loop's late outcome is refused by its fence (see `store::jobs`).
    let lease_secs = ctx.cfg.store.lease_secs;
    let mut renew = tokio::time::interval(std::time::Duration::from_secs(
        (lease_secs as u64 / 3).max(1),
    ));
    renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut in_flight = tokio::task::JoinSet::new();
    // The source host of each task in flight, to give its slot back when it ends.
    let mut task_hosts: std::collections::HashMap<tokio::task::Id, String> = Default::default();
    // Jobs in flight per source host, so leasing stays fair between hosts.
    let mut hosts: std::collections::HashMap<String, usize> = Default::default();
    let finished_host = |hosts: &mut std::collections::HashMap<String, usize>, host: &str| {
        if let Some(n) = hosts.get_mut(host) {
            *n -= 1;
            if *n == 0 {
                hosts.remove(host);
            }
        }
    };
    loop {
        let free = limit.saturating_sub(in_flight.len());
        if (free >= refill || in_flight.is_empty()) && !stopping() {
            let leased = ctx
                .group_commit
                .lease_due(free, lease_secs, owner.clone(), hosts.clone(), per_host)
                .await;
            match leased {
                Ok(jobs) => {
                    for job in jobs {
                        let ctx = ctx.clone();
                        let host = job.source_host();
                        *hosts.entry(host.clone()).or_default() += 1;
                        let task = in_flight.spawn(async move { ctx.process(&job).await });
                        task_hosts.insert(task.id(), host);
                    }
                }
                Err(e) => tracing::error!(error = %e, "cannot lease jobs"),
            }
        }
        if stopping() || (shutdown.is_none() && in_flight.is_empty()) {
            break;
        }
        let idle_wait = std::time::Duration::from_secs(1);
        tokio::select! {
            finished = in_flight.join_next_with_id(), if !in_flight.is_empty() => {
                // A job's host slot is given back however its task ended: a panic (logged
                // here; its lease expires and the job is tried again) must not keep it.
                let (id, processed) = match finished {
                    Some(Ok((id, processed))) => (id, Some(processed)),
                    Some(Err(e)) => {
                        tracing::error!(error = %e, "a verification task ended without an outcome; its job will be tried again");
                        (e.id(), None)
                    }
                    None => continue,
                };
                if let Some(host) = task_hosts.remove(&id) {
                    finished_host(&mut hosts, &host);
                }
                if let Some(processed) = processed {
                    done(processed);
                }
            }
            _ = renew.tick(), if !in_flight.is_empty() => {
                let (owner, secs) = (owner.clone(), lease_secs);
                let renewed = ctx.group_commit.renew_leases(owner, secs).await;
                if let Err(e) = renewed {
                    tracing::error!(error = %e, "cannot renew leases");
                }
            }
            _ = ctx.wake.notified(), if shutdown.is_some() => {}
            _ = tokio::time::sleep(idle_wait), if shutdown.is_some() => {}
            _ = async { if let Some(s) = &shutdown { s.wait().await } }, if shutdown.is_some() => {}
        }
    }
    let grace = std::time::Duration::from_secs(ctx.cfg.fetch.timeout_secs + 5);
    let _ = tokio::time::timeout(grace, async {
        while let Some(finished) = in_flight.join_next().await {
            if let Ok(processed) = finished {
                done(processed);
            }
        }
    })
    .await;
    in_flight.abort_all();
    if let Err(e) = ctx.store.release_leases(&owner) {
        tracing::error!(error = %e, "could not release leases");
    }
}
