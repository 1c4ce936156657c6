//! One job, from fetch to what the store writes: the source fetched (conditionally when
//! re-checking), its body checked for a real link, the mention's facts read, the authorship
//! algorithm's last step, and the pipeline's rules turned into what the store applies.

use super::*;

impl Context {
    /// Fetches, verifies and applies one job. Never panics on input; store errors are logged.
    pub async fn process(&self, job: &Job) -> Processed {
        self.process_then(job, || {}).await
    }

    /// [`Context::process`], calling `checked` once the source is fetched and read, before
    /// its outcome is written: the job loop counts a job against its concurrency and its
    /// host's share only while it fetches (see `worker`).
    pub async fn process_then(&self, job: &Job, checked: impl FnOnce()) -> Processed {
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
            if let Some(reason) = self.not_kept(job, x) {
                outcome = Outcome::Refused(reason.into());
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
        checked();
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

    /// Why a verified mention is not kept, if it is not: the blogger's own syndicated copy
    /// (POSSE: the post itself, come back through the social sources or Brid.gy — a source
    /// under one of their accounts, `[site] own_profiles` and the home page's rel=me, or signed
    /// by one; others' replies on that copy count), or a type `[moderation] collect` leaves out.
    fn not_kept(&self, job: &Job, x: &Extracted) -> Option<&'static str> {
        let sites = self.sites();
        let site = sites.for_target(&job.target);
        let from_home_page = site
            .map(|s| self.store.site_profiles(&s.name).unwrap_or_default())
            .unwrap_or_default();
        let profiles = || {
            let configured = site
                .into_iter()
                .flat_map(|s| s.own_profiles.iter().map(Url::as_str));
            configured.chain(from_home_page.iter().map(String::as_str))
        };
        let is_own = |url: &str| crate::model::under_any_profile(url, profiles());
        if is_own(&job.source) || x.author.url.as_deref().is_some_and(is_own) {
            return Some("own syndicated copy");
        }
        let kind_of = x.mention_type.unwrap_or(crate::model::MentionType::Mention);
        (!self.cfg.moderation.collects(kind_of)).then_some("type not collected")
    }

    /// What the store is to write for `outcome`, by the pipeline's rules: when a failure is
    /// given up on, and what a 404 means for a mention that was verified before.
    fn applied(&self, job: &Job, outcome: &Outcome, decision: &mut Decision) -> Applied {
        match outcome {
            Outcome::Verified(x) => Applied::Verified {
                extracted: x.clone(),
                hold_new: self.holds_new(&job.target),
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
