//! What a producer hands in, and the checks a candidate passes before it is queued: a target
//! that names one of the site's posts (learned on the spot from its page when new), a source
//! that is a public http(s) URL on no blocked domain. Refusals are answered at once and logged.

use super::*;

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

impl Context {
    /// The post a target names: a known post, or a page under the site that exists (learned
    /// on the spot, so a webmention for a post newer than the last crawl still lands).
    pub async fn resolve_target(&self, target: &str) -> Result<PostRef, Rejection> {
        let url = Url::parse(target.trim())
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
            .ok_or_else(|| {
                Rejection::InvalidTarget(format!("target {target:?} is not an http(s) URL"))
            })?;
        let sites = self.sites();
        let Some(site) = sites.for_url(&url) else {
            // One site names itself, as before; a host of many does not list its others to
            // whoever sends a stray ping.
            return Err(Rejection::InvalidTarget(match sites.only() {
                Some(only) => format!("target {target} is not under this site ({})", only.base_url),
                None => format!("target {target} is not under any site served here"),
            }));
        };
        let key = match_key(target)
            .ok_or_else(|| Rejection::InvalidTarget("target has no host".into()))?;
        if let Some(post) = self.store.post_by_match_key(&key)? {
            return Ok(post);
        }
        if match_key(site.base_url.as_str()).as_deref() == Some(key.as_str()) {
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
            .add_post_from_page(page_url.to_string(), key, about.title, site.name.clone())
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
        let (candidate, post) = self.validated(source, target, kind, hint).await?;
        let enqueued = self.group_commit.enqueue(candidate).await?;
        self.wake.notify_one();
        Ok((enqueued, post))
    }

    /// [`Context::submit`] for a check made now by the caller (`pingback.ping`, `backfeed
    /// submit`): the job is leased to [`Context::lease_owner`] in the commit that queues it, so
    /// no worker — of this process or another — takes it in between. `None` for the job: a
    /// worker already holds it (the pair was being checked).
    pub async fn submit_to_check(
        &self,
        source: &str,
        target: &str,
        kind: Kind,
    ) -> Result<(Enqueued, PostRef, Option<crate::store::Job>), Rejection> {
        let (candidate, post) = self.validated(source, target, kind, None).await?;
        let lease_secs = self.cfg.fetch.timeout_secs as i64 + 30;
        let (enqueued, job) = self
            .group_commit
            .enqueue_and_lease(candidate, lease_secs, self.lease_owner.clone())
            .await?;
        Ok((enqueued, post, job))
    }

    /// The checks a candidate passes before it is queued; the candidate and its post.
    async fn validated(
        &self,
        source: &str,
        target: &str,
        kind: Kind,
        hint: Option<&Hint>,
    ) -> Result<(Candidate, PostRef), Rejection> {
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
        Ok((candidate, post))
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
}
