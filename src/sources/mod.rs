//! The producers that look for links nobody pinged us about, run by `crawl` and the schedule:
//! the site's own feeds and sitemaps ([`own_posts`]: what the posts are), watched feeds and
//! pages ([`watched`]), the web server's referrer logs ([`refback`]) and the social networks
//! ([`social`], one file per network). This file holds what they share and the crawl itself.
//!
//! Producers only make candidates; the pipeline verifies them. What they remember between runs
//! lives in the store: validators and health per fetched URL (`fetch_state`), a fingerprint per
//! feed item (so an unchanged item is never looked at twice), and the inode and offset of each
//! access log (so a log line is read once, across rotations).

pub mod own_posts;
pub mod refback;
pub mod social;
pub mod watched;

use crate::fetch::{Fetched, Request, Trust};
use crate::model::{Kind, Wait, match_key, now_rfc3339};
use crate::pipeline::{Context, Hint, Processed};
use crate::store::FetchState;
use crate::verify::Page;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use url::Url;

/// What one crawl did, for the summary line.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Summary {
    pub posts: usize,
    pub found: usize,
    pub verified: usize,
    pub rejected: usize,
    pub unchanged: usize,
    pub errors: usize,
    /// Pings sent for the blogger's own posts (with `[send] enabled`).
    pub sent: usize,
    /// Watched URLs still failing, not tried this run (backing off; see `backfeed status`).
    pub failing: usize,
    /// Candidates put off by our own per-host fetch budget (checked on a later run).
    pub deferred: usize,
}

impl Summary {
    /// Adds the outcomes of processed jobs.
    pub fn add_processed(&mut self, processed: &[Processed]) {
        for p in processed {
            match p.outcome.word() {
                "verified" => self.verified += 1,
                "unchanged" => self.unchanged += 1,
                "transient" => self.errors += 1,
                "deferred" => self.deferred += 1,
                _ => self.rejected += 1,
            }
        }
    }

    pub fn line(&self) -> String {
        let line = format!(
            "posts {} · found {} · verified {} · rejected {} · unchanged {} · errors {}",
            self.posts, self.found, self.verified, self.rejected, self.unchanged, self.errors
        );
        let sent = (self.sent > 0).then(|| format!(" · sent {}", self.sent));
        let failing =
            (self.failing > 0).then(|| format!(" · failing {} (backing off)", self.failing));
        let deferred =
            (self.deferred > 0).then(|| format!(" · deferred {} (host budget)", self.deferred));
        format!(
            "{line}{}{}{}",
            sent.unwrap_or_default(),
            failing.unwrap_or_default(),
            deferred.unwrap_or_default()
        )
    }
}

/// A fetch of an operator-configured URL that remembers validators and health. `Ok(None)`
/// means "not modified" or "not due yet (backing off)".
pub(crate) async fn fetch_configured(
    ctx: &Context,
    url: &Url,
    summary: &mut Summary,
) -> Option<Fetched> {
    let key = url.as_str();
    let mut state = ctx.store.fetch_state(key).unwrap_or_default();
    if let Some(next) = &state.next_try
        && next.as_str() > now_rfc3339().as_str()
    {
        // Still failing: it is counted, so a crawl never reports "errors 0" over broken URLs.
        if state.error_count > 0 {
            summary.failing += 1;
        }
        tracing::debug!(url = key, next_try = %next, "not due yet");
        return None;
    }
    let mut req = Request::get(url.clone(), Trust::Configured);
    req.accept = "application/atom+xml, application/rss+xml, application/feed+json, application/xml;q=0.9, text/html;q=0.8, */*;q=0.1";
    req.etag = state.etag.clone();
    req.last_modified = state.last_modified.clone();
    let result = ctx.fetcher.fetch(&req).await;
    let outcome = match result {
        Ok(f) if f.status == 304 => {
            summary.unchanged += 1;
            record_health(&mut state, None, f.max_age);
            None
        }
        Ok(f) if (200..300).contains(&f.status) => {
            state.etag = f.etag.clone();
            state.last_modified = f.last_modified.clone();
            record_health(&mut state, None, f.max_age);
            Some(f)
        }
        Ok(f) => {
            summary.errors += 1;
            let wait = f.retry_after;
            record_health(&mut state, Some(format!("HTTP {}", f.status)), wait);
            None
        }
        Err(e) => {
            summary.errors += 1;
            record_health(&mut state, Some(e.to_string()), None);
            None
        }
    };
    if let Some(err) = &state.last_error
        && state.error_count > 0
    {
        tracing::warn!(url = key, errors = state.error_count, error = %err, "watched URL failing");
    }
    if let Err(e) = ctx.store.put_fetch_state(key, &state) {
        tracing::error!(error = %e, "cannot save fetch state");
    }
    outcome
}

/// Health bookkeeping: errors back off exponentially (or as the server asked); a success may
/// ask us (max-age) not to come back too soon.
pub(crate) fn record_health(state: &mut FetchState, error: Option<String>, wait: Option<Wait>) {
    const DAY: u64 = 86_400;
    match error {
        None => {
            state.error_count = 0;
            state.last_error = None;
            state.last_ok = Some(now_rfc3339());
            state.next_try = wait
                .filter(|w| w.as_secs() > 0)
                .map(|w| w.at_most(DAY).from_now_rfc3339());
        }
        Some(e) => {
            state.error_count += 1;
            state.last_error = Some(e);
            let backoff = wait
                .unwrap_or_else(|| Wait::secs(60 * (1 << state.error_count.clamp(0, 10)) as u64));
            state.next_try = Some(backoff.at_most(DAY).from_now_rfc3339());
        }
    }
}

pub(crate) fn entry_link(entry: &feed_rs::model::Entry) -> Option<String> {
    entry
        .links
        .iter()
        .find(|l| l.rel.as_deref().is_none_or(|r| r == "alternate"))
        .or_else(|| entry.links.first())
        .map(|l| l.href.clone())
        .or_else(|| entry.id.starts_with("http").then(|| entry.id.clone()))
}

/// Parses RSS, Atom or JSON Feed from raw bytes (so the declared encoding is used), resolving
/// relative links against the feed's URL and `xml:base`.
pub(crate) fn parse_feed(
    fetched: &Fetched,
) -> Result<feed_rs::model::Feed, feed_rs::parser::ParseFeedError> {
    feed_rs::parser::Builder::new()
        .base_uri(Some(fetched.final_url.as_str()))
        .sanitize_content(false)
        .build()
        .parse(fetched.body.as_slice())
}

/// Match keys of every known post → its URL.
pub(crate) fn post_index(ctx: &Context) -> HashMap<String, String> {
    ctx.store
        .list_posts()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| Some((match_key(&p.url)?, p.url)))
        .collect()
}

pub(crate) async fn submit_candidate(
    ctx: &Context,
    source: &str,
    post: &str,
    kind: Kind,
    hint: Option<&Hint>,
    summary: &mut Summary,
) {
    match ctx.submit(source, post, kind, hint).await {
        Ok((enqueued, _)) if enqueued.new => summary.found += 1,
        Ok(_) => {}
        Err(r) => {
            tracing::info!(source = %source, post = %post, reason = %r.reason(), "candidate refused")
        }
    }
}

/// The known posts an HTML page or fragment links to, each once. (The parsed tree is not
/// `Send`, so it lives only inside this function, never across an await.)
pub(crate) fn linked_posts(html: &str, base: &Url, posts: &HashMap<String, String>) -> Vec<String> {
    let Ok(page) = Page::parse(html, base) else {
        return Vec::new();
    };
    let mut linked: Vec<String> = page
        .link_urls()
        .iter()
        .filter_map(|u| posts.get(&match_key(u.as_str())?).cloned())
        .collect();
    linked.sort();
    linked.dedup();
    linked
}

/// The known posts a fetched page links to, read on the blocking pool.
pub(crate) async fn linked_posts_of_page(
    fetched: Fetched,
    posts: &HashMap<String, String>,
) -> Vec<String> {
    let posts = posts.clone();
    tokio::task::spawn_blocking(move || {
        let html = crate::fetch::decode_text(&fetched.body, fetched.content_type.as_deref());
        linked_posts(&html, &fetched.final_url, &posts)
    })
    .await
    .unwrap_or_default()
}

/// One full cycle: own posts, every producer, then every due candidate.
pub async fn crawl(ctx: &Arc<Context>, progress: &mut (dyn FnMut(&Processed) + Send)) -> Summary {
    let mut summary = Summary::default();
    own_posts::refresh_posts(ctx, &mut summary).await;
    watched::poll_watches(ctx, &mut summary).await;
    refback::poll_refback(ctx, &mut summary).await;
    social::poll_all(ctx, &mut summary).await;
    finish_run(ctx, summary, progress).await
}

/// How every run ends: every due candidate verified, due notifications delivered, and, with
/// `[send] enabled`, the posts that changed pinged.
async fn finish_run(
    ctx: &Arc<Context>,
    mut summary: Summary,
    progress: &mut (dyn FnMut(&Processed) + Send),
) -> Summary {
    let processed = crate::pipeline::drain(ctx, |p| progress(p)).await;
    summary.add_processed(&processed);
    crate::notify::deliver_due(ctx).await;
    if ctx.cfg.send.enabled {
        match crate::send::send(ctx, &Default::default(), &mut |_| {}).await {
            Ok(done) => {
                summary.sent = done
                    .iter()
                    .filter(|r| r.status == crate::model::SendStatus::Sent)
                    .count()
            }
            Err(e) => {
                tracing::error!(error = %e, "sending failed");
                summary.errors += 1;
            }
        }
    }
    summary
}

/// Re-checks every stored mention (conditionally), then exits.
pub async fn reverify(
    ctx: &Arc<Context>,
    spread_secs: i64,
    progress: &mut (dyn FnMut(&Processed) + Send),
) -> Summary {
    let mut summary = Summary::default();
    if let Err(e) = ctx.store.enqueue_reverify(spread_secs) {
        tracing::error!(error = %e, "cannot queue re-verification");
        summary.errors += 1;
        return summary;
    }
    finish_run(ctx, summary, progress).await
}
