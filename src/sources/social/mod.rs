//! Social sources, polled during each crawl: Hacker News (Algolia search), Reddit
//! (`/api/info.json?url=`), Bluesky (`app.bsky.feed.searchPosts`, logged in with an app
//! password) and Mastodon (replies, favourites and boosts of your own toots; optional search).
//!
//! Each adapter turns API records into [`Hit`]s: a social post's public web address, the post of
//! ours it links to, and the record's own fields as evidence. The record *is* the evidence (its
//! story URL, facet or embed URI, or status HTML was checked here against our posts), so the
//! pipeline never fetches the social site's page.
//!
//! Shared here: one request helper that turns 429/5xx into "skip until the announced reset"
//! (each API says it differently) and 401/403 into a credential error naming the variable to
//! fix; a cadence rule (new posts every crawl, older ones rarely, as Brid.gy polls) and a
//! per-crawl request budget per source, both kept in the store; and secrets read from the
//! environment at use, never stored or logged.

mod bluesky;
mod hackernews;
mod mastodon;
mod reddit;

use crate::config::SocialSource;
use crate::fetch::{Request, Trust};
use crate::model::{Kind, OrLog, match_key, now_rfc3339};
use crate::pipeline::{Context, Hint, RecordEvidence};
use crate::store::PostRef;
use serde_json::Value;
use std::collections::HashMap;
use url::Url;

/// A social post that links to one of ours.
#[derive(Clone, Debug)]
pub struct Hit {
    pub source: String,
    pub post_url: String,
    pub evidence: RecordEvidence,
}

/// Why a source stopped for this crawl.
#[derive(Clone, Debug, PartialEq)]
pub enum SourceError {
    /// Over the limit: skip the source until this many seconds from now.
    RateLimited(u64),
    /// A credential is missing or refused; the message names what to fix.
    Auth(String),
    /// The API could not be reached (timeout, network): says nothing about credentials.
    Unreachable(crate::fetch::FetchError),
    Other(String),
}

/// One source's settings and its requests-per-crawl budget.
pub(crate) struct Source<'a> {
    name: &'static str,
    kind: Kind,
    cfg: &'a SocialSource,
    api: Url,
    /// Requests this crawl may still make.
    budget: usize,
}

impl Source<'_> {
    fn spend(&mut self, n: usize) -> bool {
        if self.budget < n {
            return false;
        }
        self.budget -= n;
        true
    }
}

pub(crate) const DAY: i64 = 86_400;

/// How often a post is asked about: every crawl while it is new, then rarely.
pub(crate) fn poll_interval_secs(age_secs: i64) -> i64 {
    match age_secs {
        a if a < 2 * DAY => 0,
        a if a < 30 * DAY => DAY / 4,
        _ => 7 * DAY,
    }
}

/// Posts due for `source`, newest first.
pub(crate) fn due_posts(ctx: &Context, source: &str) -> Vec<PostRef> {
    let now = chrono::Utc::now();
    let posts = ctx.store.list_posts().unwrap_or_default();
    posts
        .into_iter()
        .filter(|p| {
            let age = p
                .published
                .as_deref()
                .and_then(|d| chrono::DateTime::parse_from_rfc3339(d).ok())
                .map_or(i64::MAX, |d| {
                    (now - d.with_timezone(&chrono::Utc)).num_seconds()
                });
            let last = ctx
                .store
                .social_polled(source, &p.key)
                .ok()
                .flatten()
                .and_then(|d| chrono::DateTime::parse_from_rfc3339(&d).ok())
                .map(|d| (now - d.with_timezone(&chrono::Utc)).num_seconds());
            last.is_none_or(|since| since >= poll_interval_secs(age))
        })
        .filter_map(|p| {
            let key = match_key(&p.url)?;
            ctx.store.post_by_match_key(&key).ok().flatten()
        })
        .collect()
}

pub(crate) fn mark_polled(ctx: &Context, source: &str, post: &PostRef) {
    ctx.store
        .set_social_polled(source, &post.key, &now_rfc3339())
        .or_log("social state not kept");
}

/// Seconds until a reset announced in headers: `Retry-After`, Reddit's seconds, Bluesky's epoch
/// seconds, Mastodon's ISO 8601.
pub(crate) fn reset_secs(fetched: &crate::fetch::Fetched) -> u64 {
    let header = |name: &str| {
        fetched
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(wait) = fetched.retry_after {
        return wait.as_secs();
    }
    let now = chrono::Utc::now().timestamp();
    if let Some(v) = header("x-ratelimit-reset") {
        if let Ok(secs) = v.parse::<f64>() {
            return secs.ceil() as u64; // Reddit: seconds remaining
        }
        if let Ok(at) = chrono::DateTime::parse_from_rfc3339(v) {
            return (at.timestamp() - now).max(1) as u64; // Mastodon: a timestamp
        }
    }
    if let Some(epoch) = header("ratelimit-reset").and_then(|v| v.parse::<i64>().ok()) {
        return (epoch - now).max(1) as u64; // Bluesky: epoch seconds
    }
    900
}

/// GETs (or POSTs) an API URL and parses JSON, mapping limits and auth failures.
pub(crate) async fn api_json(
    ctx: &Context,
    src: &mut Source<'_>,
    url: Url,
    authorization: Option<&str>,
    body: Option<(&'static str, String)>,
) -> Result<Value, SourceError> {
    if !src.spend(1) {
        return Err(SourceError::Other(
            "request budget for this crawl spent".into(),
        ));
    }
    let mut req = Request::get(url, Trust::Configured);
    req.accept = "application/json";
    req.body = body;
    if let Some(value) = authorization {
        req.headers.push(("authorization", value.to_string()));
    }
    let fetched = ctx
        .fetcher
        .fetch(&req)
        .await
        .map_err(SourceError::Unreachable)?;
    let remaining = fetched
        .headers
        .get("x-ratelimit-remaining")
        .or_else(|| fetched.headers.get("ratelimit-remaining"))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok());
    match fetched.status {
        200..=299 => {}
        429 | 503 => return Err(SourceError::RateLimited(reset_secs(&fetched))),
        401 | 403 => {
            return Err(SourceError::Auth(format!(
                "{} answered {}",
                src.name, fetched.status
            )));
        }
        s => {
            let detail: String = String::from_utf8_lossy(&fetched.body)
                .chars()
                .take(200)
                .collect();
            return Err(SourceError::Other(format!(
                "{} answered {s}: {detail}",
                src.name
            )));
        }
    }
    let value: Value = serde_json::from_slice(&fetched.body)
        .map_err(|e| SourceError::Other(format!("{} sent JSON we cannot read: {e}", src.name)))?;
    if remaining.is_some_and(|r| r < 1.0) {
        // This answer is good, but the next would be refused: stop here, keep what we got.
        ctx.store
            .set_social_skip(src.name, &in_secs(reset_secs(&fetched)))
            .or_log("social state not kept");
        src.budget = 0;
    }
    Ok(value)
}

/// Now + `secs`, rounded up to the next whole second (timestamps are kept at second precision,
/// and a reset must never end early).
pub(crate) fn in_secs(secs: u64) -> String {
    crate::model::Wait::secs(secs.saturating_add(1))
        .at_most(7 * DAY as u64 + 1)
        .from_now_rfc3339()
}

pub(crate) fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

pub(crate) fn join(api: &Url, path: &str) -> Url {
    let base = api.as_str().trim_end_matches('/');
    Url::parse(&format!("{base}{path}")).unwrap_or_else(|_| api.clone())
}

/// Polls every enabled source once, within its budget; one broken source never stops the
/// others. Returns the hits turned into candidates.
pub async fn poll_all(ctx: &Context, summary: &mut super::Summary) -> usize {
    let sources = &ctx.cfg.sources;
    let table: [(&str, Kind, &SocialSource, &str, usize); 4] = [
        (
            "hackernews",
            Kind::Hackernews,
            &sources.hackernews,
            "https://hn.algolia.com/api/v1",
            100,
        ),
        (
            "reddit",
            Kind::Reddit,
            &sources.reddit,
            "https://www.reddit.com",
            8,
        ),
        (
            "bluesky",
            Kind::Bluesky,
            &sources.bluesky,
            "https://bsky.social",
            50,
        ),
        (
            "mastodon",
            Kind::Mastodon,
            &sources.mastodon,
            "https://mastodon.social",
            60,
        ),
    ];
    let mut found = 0;
    for (name, kind, cfg, default_api, budget) in table {
        if !cfg.enabled {
            continue;
        }
        if let Some(until) = ctx
            .store
            .social_source(name)
            .ok()
            .and_then(|s| s.skip_until)
            && until > now_rfc3339()
        {
            tracing::info!(source = name, until = %until, "rate limited: skipped this crawl");
            continue;
        }
        let api = Url::parse(cfg.api_base.as_deref().unwrap_or(default_api))
            .expect("config validated api_base");
        let mut src = Source {
            name,
            kind,
            cfg,
            api,
            budget,
        };
        let posts = due_posts(ctx, name);
        let result = match name {
            "hackernews" => hackernews::hackernews(ctx, &mut src, &posts).await,
            "reddit" => reddit::reddit(ctx, &mut src, &posts).await,
            "bluesky" => bluesky::bluesky(ctx, &mut src, &posts).await,
            _ => mastodon::mastodon(ctx, &mut src, &posts).await,
        };
        let record_error = |error: Option<&str>| {
            ctx.store
                .set_social_error(name, error)
                .or_log("social source error not kept")
        };
        match result {
            Ok(hits) => {
                record_error(None);
                for hit in hits {
                    let hint = Hint {
                        record: Some(hit.evidence),
                        ..Default::default()
                    };
                    match ctx
                        .submit(&hit.source, &hit.post_url, src.kind, Some(&hint))
                        .await
                    {
                        Ok((enqueued, _)) if enqueued.new => {
                            found += 1;
                            summary.found += 1;
                        }
                        Ok(_) => {}
                        Err(r) => {
                            tracing::info!(source = %hit.source, reason = %r.reason(), "social candidate refused")
                        }
                    }
                }
            }
            Err(SourceError::RateLimited(secs)) => {
                tracing::warn!(
                    source = name,
                    retry_in_secs = secs,
                    "rate limited: skipping until the reset"
                );
                ctx.store
                    .set_social_skip(name, &in_secs(secs))
                    .or_log("social state not kept");
                record_error(Some(&format!("rate limited until {}", in_secs(secs))));
            }
            Err(SourceError::Auth(message)) => {
                tracing::error!(source = name, error = %message, "credential refused");
                summary.errors += 1;
                record_error(Some(&message));
            }
            Err(SourceError::Unreachable(e)) => {
                tracing::warn!(source = name, error = %e, "source unreachable this crawl");
                summary.errors += 1;
                record_error(Some(&format!("unreachable: {e}")));
            }
            Err(SourceError::Other(message)) => {
                tracing::warn!(source = name, error = %message, "source failed this crawl");
                summary.errors += 1;
                record_error(Some(&message));
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cadence_polls_new_posts_often_and_old_ones_rarely() {
        assert_eq!(poll_interval_secs(3600), 0);
        assert_eq!(poll_interval_secs(10 * DAY), DAY / 4);
        assert_eq!(poll_interval_secs(400 * DAY), 7 * DAY);
    }
}
