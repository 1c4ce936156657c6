//! The other half of the conversation: pings for the links in the blogger's own posts, as
//! WordPress sent them and webmention.app does for static sites.
//!
//! For each post: its page is read (the site is trusted, as configured) and its content's links
//! taken ([`links`]); a post whose content fingerprint is what it was at the last send is done.
//! Otherwise every link it has now and every link it had at the last send is pinged (so a
//! receiver can drop a removed link); a post whose page answers 404 or 410 pings every link it
//! had. Each link's page is fetched once, as a URL from outside (the SSRF guard, caps and
//! per-host limits hold for it and for the endpoints found there), and [`discover`] finds
//! Webmention first, else Pingback, else Trackback.
//!
//! Every send is recorded per (post, link) with the fingerprint, protocol, endpoint and answer,
//! together with its decision-log line (kind `send`). A transient failure (timeout, 5xx, 429,
//! our own host budget) is `retrying` with backoff and picked up by the next run whatever the
//! post does; a 4xx is final (`failed`); an excluded domain or a private address is `refused`.
//! Must never: ping from a template link, ping an unchanged post twice, or lose a retry.

pub mod discover;
pub mod links;

use crate::fetch::{FetchError, Fetched, Request, Trust};
use crate::model::{OrLog, SendStatus, host_in_domain, host_of, match_key, now_rfc3339};
use crate::pipeline::{Context, LeaseRenewer, MAX_ATTEMPTS, retry_delay_secs};
use crate::receive::xmlrpc::{self, Answer, Value};
use crate::store::{Decision, PostRef, SendRecord, SendResult};
use discover::Endpoints;
use futures_util::StreamExt;
use std::collections::HashSet;
use url::Url;

/// The fingerprint a deleted post is recorded with.
const DELETED: &str = "deleted";

/// What `backfeed send` was asked.
#[derive(Clone, Debug, Default)]
pub struct SendOptions {
    /// Only these posts (their URLs); all known posts when empty.
    pub posts: Vec<String>,
    /// Discover and report, but send and record nothing.
    pub dry_run: bool,
    /// Send for every post and link, changed or not.
    pub force: bool,
}

/// Why a send run could not start.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("{0} is not a known post of this site (see `backfeed posts`)")]
    UnknownPost(String),
    #[error("store error: {0}")]
    Store(#[from] crate::store::StoreError),
}

/// What one run did for one post: a record per link, and whether every link due got an
/// outcome (then the post's content counts as sent).
#[derive(Default)]
struct PostSent {
    records: Vec<SendRecord>,
    /// The content fingerprint sent whole, when the run was not stopped partway.
    completed: Option<String>,
}

/// Sends for the posts due (or named), calling `progress` after each link; returns what was
/// done, one record per link.
///
/// Each post is a small state machine. A run leases the post's `send` job (fenced: see
/// [`crate::store::Lease`]; a run of its own owner, so two runs in one process never share a
/// post), reads the page, and pings each link due, recording each outcome as it goes. Only
/// when every link has an outcome does the post's fingerprint count as sent; a run stopped
/// partway (a crash, a kill) leaves it as it was, and the next run resumes: it pings the links
/// that have no outcome for this content yet, and none twice.
pub async fn send(
    ctx: &Context,
    opts: &SendOptions,
    progress: &mut (dyn FnMut(&SendRecord) + Send),
) -> Result<Vec<SendRecord>, SendError> {
    let posts = if opts.posts.is_empty() {
        ctx.store.all_posts()?
    } else {
        let mut named = Vec::new();
        for url in &opts.posts {
            let post = match_key(url)
                .map(|k| ctx.store.post_by_match_key(&k))
                .transpose()?
                .flatten()
                .ok_or_else(|| SendError::UnknownPost(url.clone()))?;
            named.push(post);
        }
        named
    };
    let retries: HashSet<i64> = ctx.store.posts_with_due_retries()?.into_iter().collect();
    let owner = crate::pipeline::new_lease_owner();
    let _renewer = (!opts.dry_run).then(|| LeaseRenewer::start(ctx, &owner));
    // A few posts at a time: one post's hanging link (each capped by the fetch timeout) does
    // not hold back every other post's pings.
    let runs = futures_util::stream::iter(posts)
        .map(|post| {
            let has_retries = retries.contains(&post.id);
            let owner = owner.as_str();
            async move { send_one_post(ctx, &post, opts, has_retries, owner).await }
        })
        .buffer_unordered(POSTS_AT_ONCE);
    futures_util::pin_mut!(runs);
    let mut done = Vec::new();
    while let Some(records) = runs.next().await {
        for record in records? {
            progress(&record);
            done.push(record);
        }
    }
    Ok(done)
}

/// Posts a send run works on at once.
const POSTS_AT_ONCE: usize = 4;

/// One post's turn in a run: its lease (one run at a time per post: while serve's schedule or
/// another `backfeed send` holds it, this run leaves it alone rather than ping twice), its
/// links pinged, and the post given back with what was completed.
async fn send_one_post(
    ctx: &Context,
    post: &PostRef,
    opts: &SendOptions,
    has_retries: bool,
    owner: &str,
) -> Result<Vec<SendRecord>, SendError> {
    let lease = if opts.dry_run {
        None
    } else {
        match ctx
            .store
            .lease_post_send(post.id, ctx.cfg.store.lease_secs, owner)?
        {
            Some(lease) => Some(lease),
            None => {
                tracing::info!(post = %post.url, "skipped: another run is sending for this post");
                return Ok(Vec::new());
            }
        }
    };
    let sent = match send_post(ctx, post, opts, has_retries, lease.as_ref()).await {
        Err(SendError::Store(e)) if e.is_stale_lease() => {
            tracing::warn!(post = %post.url, error = %e, "stopped: another run took this post over");
            return Ok(Vec::new());
        }
        other => other,
    };
    if let Some(lease) = &lease {
        let completed = sent.as_ref().ok().and_then(|s| s.completed.as_deref());
        match ctx.store.post_send_done(lease, completed) {
            Err(e) if e.is_stale_lease() => {
                tracing::warn!(post = %post.url, error = %e, "another run took this post over");
            }
            other => other?,
        }
    }
    Ok(sent?.records)
}

/// The links due for one post, pinged.
async fn send_post(
    ctx: &Context,
    post: &PostRef,
    opts: &SendOptions,
    has_retries: bool,
    lease: Option<&crate::store::Lease>,
) -> Result<PostSent, SendError> {
    let previous = ctx.store.sends_for_post(post.id)?;
    let state = ctx.store.post_send_state(post.id)?;
    let Some((fingerprint, links)) = read_post(ctx, post, &state, opts.force).await? else {
        return Ok(PostSent::default());
    };
    let changed = state.sent_fingerprint.as_deref() != Some(fingerprint.as_str());
    let now = now_rfc3339();
    let due_retry = |r: &SendRecord| {
        r.status == SendStatus::Retrying && r.next_try.as_deref() <= Some(now.as_str())
    };
    let targets: Vec<String> = if opts.force || changed {
        // What the post links to now, and what it linked to at the last send, less what a run
        // stopped partway already gave an outcome for this very content (unless it is a retry
        // now due, or the run is forced).
        let mut all = links;
        for r in &previous {
            if !all.contains(&r.target) {
                all.push(r.target.clone());
            }
        }
        all.retain(|target| {
            opts.force
                || !previous
                    .iter()
                    .any(|r| &r.target == target && r.fingerprint == fingerprint && !due_retry(r))
        });
        all
    } else if has_retries {
        previous
            .iter()
            .filter(|r| due_retry(r))
            .map(|r| r.target.clone())
            .collect()
    } else {
        Vec::new()
    };
    let mut out = Vec::new();
    // A self-ping is one to the post's own site; another site served here is pinged like
    // any other (its blogger is someone else).
    let own_site = ctx.store.site_of(&post.url);
    for target in targets {
        if !ctx.cfg.send.self_pings
            && (match_key(&target) == match_key(&post.url)
                || (!own_site.is_empty() && ctx.store.site_of(&target) == own_site))
        {
            continue;
        }
        let attempts = previous
            .iter()
            .find(|r| r.target == target && r.status == SendStatus::Retrying)
            .map_or(0, |r| r.attempts);
        let mut result = if let Some(domain) = excluded_domain(ctx, &target) {
            SendResult {
                protocol: None,
                endpoint: None,
                status: SendStatus::Refused,
                http_status: None,
                reason: format!("excluded domain {domain}"),
                retry_in_secs: None,
            }
        } else {
            deliver(ctx, &post.url, &target, opts.dry_run).await
        };
        if result.status == SendStatus::Retrying {
            if attempts + 1 >= MAX_ATTEMPTS {
                result.status = SendStatus::Failed;
                result.reason = format!("gave up after {MAX_ATTEMPTS} tries: {}", result.reason);
                result.retry_in_secs = None;
            } else {
                result.retry_in_secs = Some(
                    result
                        .retry_in_secs
                        .unwrap_or(0)
                        .max(retry_delay_secs(attempts)),
                );
            }
        }
        if let Some(lease) = lease {
            let decision = Decision {
                at: now_rfc3339(),
                source: post.url.clone(),
                target: target.clone(),
                kind: "send".into(),
                outcome: result.status.as_str().into(),
                reason: result.reason.clone(),
            };
            tracing::info!(
                source = %post.url, link = %target, protocol = result.protocol.as_deref().unwrap_or("none"),
                outcome = %result.status, reason = %result.reason, "send"
            );
            ctx.store
                .record_send(lease, &target, &fingerprint, &result, &decision)?;
        }
        out.push(SendRecord {
            source: post.url.clone(),
            target,
            protocol: result.protocol,
            endpoint: result.endpoint,
            status: result.status,
            http_status: result.http_status.map(i64::from),
            reason: Some(result.reason),
            sent_at: (!opts.dry_run).then(now_rfc3339),
            attempts: attempts + 1,
            fingerprint: fingerprint.clone(),
            next_try: None,
        });
    }
    Ok(PostSent {
        records: out,
        completed: Some(fingerprint),
    })
}

/// A post's content fingerprint and links; a deleted post has none. `None` when the page cannot
/// be read now or says nothing of its content: the post waits for another run.
///
/// A post is deleted when its page answers 410, or 404 on two runs in a row, *and* the site's
/// feeds and sitemaps no longer list it (as far as their last complete reading knows): one 404
/// of a post still listed is a glitch, never a reason to tell every link it is gone. The page
/// is asked for conditionally (its validators kept like a watched page's): a 304 is the
/// content last sent, unchanged.
async fn read_post(
    ctx: &Context,
    post: &PostRef,
    state: &crate::store::PostSendState,
    force: bool,
) -> Result<Option<(String, Vec<String>)>, SendError> {
    let Ok(url) = Url::parse(&post.url) else {
        return Ok(None);
    };
    let mut validators = ctx.store.fetch_state(&post.url).unwrap_or_default();
    let mut req = Request::get(url, Trust::Configured);
    let sent_before = state.sent_fingerprint.clone().filter(|_| !force);
    if sent_before.is_some() {
        req.etag = validators.etag.clone();
        req.last_modified = validators.last_modified.clone();
    }
    let fetched = match ctx.fetcher.fetch(&req).await {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(post = %post.url, error = %e, "post page not read; sending later");
            return Ok(None);
        }
    };
    match fetched.status {
        304 => {
            if let Some(sent) = sent_before {
                page_found(ctx, post, state)?;
                return Ok(Some((sent, Vec::new())));
            }
            return Ok(None);
        }
        status @ (404 | 410) => {
            if state.listed == Some(true) {
                tracing::warn!(post = %post.url, status, "post page answers {status} but the site's feeds or sitemaps still list it; sending later");
                return Ok(None);
            }
            let in_a_row = ctx.store.post_page_answered(post.id, true)?;
            if status == 410 || in_a_row >= 2 {
                return Ok(Some((DELETED.into(), Vec::new())));
            }
            tracing::info!(post = %post.url, "post page answers 404; deletion pings if it still does on the next run");
            return Ok(None);
        }
        200..=299 => page_found(ctx, post, state)?,
        status => {
            tracing::warn!(post = %post.url, status, "post page not read; sending later");
            return Ok(None);
        }
    }
    // Kept only when they changed: an unchanged post costs no write.
    if validators.etag != fetched.etag || validators.last_modified != fetched.last_modified {
        validators.etag = fetched.etag.clone();
        validators.last_modified = fetched.last_modified.clone();
        ctx.store
            .put_fetch_state(&post.url, &validators)
            .or_log("post page validators not kept");
    }
    let feed_content = ctx.store.post_feed_content(post.id)?;
    let content = tokio::task::spawn_blocking(move || {
        let html = crate::fetch::decode_text(&fetched.body, fetched.content_type.as_deref());
        links::post_content(&html, &fetched.final_url, feed_content.as_deref())
    })
    .await
    .ok()
    .flatten();
    if content.is_none() {
        tracing::info!(post = %post.url, "no content found on the post's page (no h-entry, feed content, article or main)");
    }
    Ok(content.map(|c| (c.fingerprint, c.links)))
}

/// The post's page was read: a run of 404s it had answered is over (written only then).
fn page_found(
    ctx: &Context,
    post: &PostRef,
    state: &crate::store::PostSendState,
) -> Result<(), SendError> {
    if state.not_found_count > 0 {
        ctx.store.post_page_answered(post.id, false)?;
    }
    Ok(())
}

fn excluded_domain(ctx: &Context, target: &str) -> Option<String> {
    let host = host_of(target)?;
    ctx.cfg
        .send
        .exclude_domains
        .iter()
        .find(|d| host_in_domain(&host, d))
        .cloned()
}

fn result(
    status: SendStatus,
    protocol: Option<&str>,
    endpoint: Option<&Url>,
    http_status: Option<u16>,
    reason: impl Into<String>,
) -> SendResult {
    SendResult {
        protocol: protocol.map(str::to_string),
        endpoint: endpoint.map(Url::to_string),
        status,
        http_status,
        reason: reason.into(),
        retry_in_secs: None,
    }
}

/// A fetch that produced no answer, as a send's result.
fn unanswered(e: FetchError, protocol: Option<&str>, endpoint: Option<&Url>) -> SendResult {
    match e {
        FetchError::Refused(r) => result(SendStatus::Refused, protocol, endpoint, None, r),
        FetchError::Throttled { wait_secs, .. } => SendResult {
            retry_in_secs: Some(wait_secs as i64),
            ..result(
                SendStatus::Retrying,
                protocol,
                endpoint,
                None,
                e.to_string(),
            )
        },
        e if e.is_transient() => result(
            SendStatus::Retrying,
            protocol,
            endpoint,
            None,
            e.to_string(),
        ),
        e => result(SendStatus::Failed, protocol, endpoint, None, e.to_string()),
    }
}

/// An HTTP answer that is not a success, as a send's result: 429 and 5xx are worth another
/// try (after `Retry-After` when given), anything else is final.
fn refused_answer(
    f: &Fetched,
    protocol: Option<&str>,
    endpoint: Option<&Url>,
    what: &str,
) -> SendResult {
    let detail: String = String::from_utf8_lossy(&f.body).chars().take(200).collect();
    let reason = format!("{what} answered {}: {}", f.status, detail.trim());
    if f.status == 429 || f.status >= 500 {
        SendResult {
            retry_in_secs: f.retry_after.map(|w| w.as_secs() as i64),
            ..result(
                SendStatus::Retrying,
                protocol,
                endpoint,
                Some(f.status),
                reason,
            )
        }
    } else {
        result(
            SendStatus::Failed,
            protocol,
            endpoint,
            Some(f.status),
            reason,
        )
    }
}

/// Discovers `target`'s endpoints (one GET) and pings the first protocol it offers.
async fn deliver(ctx: &Context, source: &str, target: &str, dry_run: bool) -> SendResult {
    let Ok(url) = Url::parse(target) else {
        return result(SendStatus::Failed, None, None, None, "not a URL");
    };
    let page = match ctx.fetcher.fetch(&Request::get(url, Trust::Outside)).await {
        Ok(page) => page,
        Err(e) => return unanswered(e, None, None),
    };
    if !(200..300).contains(&page.status) {
        return refused_answer(&page, None, None, "the linked page");
    }
    let linked = target.to_string();
    let endpoints = tokio::task::spawn_blocking(move || {
        let html = crate::fetch::decode_text(&page.body, page.content_type.as_deref());
        discover::discover(&linked, &page.final_url, &page.headers, &html)
    })
    .await
    .unwrap_or_default();
    let (protocol, endpoint) = match &endpoints {
        Endpoints {
            webmention: Some(e),
            ..
        } => ("webmention", e),
        Endpoints {
            pingback: Some(e), ..
        } => ("pingback", e),
        Endpoints {
            trackback: Some(e), ..
        } => ("trackback", e),
        _ => {
            return result(
                SendStatus::NoEndpoint,
                None,
                None,
                None,
                "the page offers no Webmention, Pingback or Trackback endpoint",
            );
        }
    };
    if let Err(e) = ctx.fetcher.precheck(endpoint, Trust::Outside) {
        return unanswered(e, Some(protocol), Some(endpoint));
    }
    if dry_run {
        return result(
            SendStatus::WouldSend,
            Some(protocol),
            Some(endpoint),
            None,
            "dry run: nothing sent",
        );
    }
    // A trackback names the blog it comes from: the title of the site the post is under.
    let blog_name = {
        let sites = ctx.sites();
        ctx.feed_names(sites.for_target(source)).title
    };
    let mut req = Request::get(endpoint.clone(), Trust::Outside);
    req.accept = "*/*";
    req.body = Some(match protocol {
        "webmention" => (
            "application/x-www-form-urlencoded",
            form(&[("source", source), ("target", target)]),
        ),
        "pingback" => (
            "text/xml",
            String::from_utf8_lossy(&xmlrpc::call(
                "pingback.ping",
                &[Value::String(source.into()), Value::String(target.into())],
            ))
            .into_owned(),
        ),
        _ => (
            "application/x-www-form-urlencoded; charset=utf-8",
            form(&[
                ("url", source),
                ("title", source),
                ("blog_name", &blog_name),
            ]),
        ),
    });
    let answer = match ctx.fetcher.fetch(&req).await {
        Ok(answer) => answer,
        Err(e) => return unanswered(e, Some(protocol), Some(endpoint)),
    };
    if !(200..300).contains(&answer.status) {
        return refused_answer(&answer, Some(protocol), Some(endpoint), "the endpoint");
    }
    let status = Some(answer.status);
    match protocol {
        "webmention" => result(
            SendStatus::Sent,
            Some(protocol),
            Some(endpoint),
            status,
            "accepted",
        ),
        "pingback" => match xmlrpc::parse_response(&answer.body) {
            Ok(Answer::Value(v)) => result(
                SendStatus::Sent,
                Some(protocol),
                Some(endpoint),
                status,
                v.as_str().unwrap_or("registered"),
            ),
            // 0x30: already registered, which is what we wanted.
            Ok(Answer::Fault {
                code: 0x30,
                message,
            }) => result(
                SendStatus::Sent,
                Some(protocol),
                Some(endpoint),
                status,
                message,
            ),
            Ok(Answer::Fault { code, message }) => result(
                SendStatus::Failed,
                Some(protocol),
                Some(endpoint),
                status,
                format!("fault {code}: {message}"),
            ),
            Err(e) => result(
                SendStatus::Failed,
                Some(protocol),
                Some(endpoint),
                status,
                format!("not an XML-RPC answer: {e}"),
            ),
        },
        _ => {
            let body = String::from_utf8_lossy(&answer.body);
            if body.contains("<error>0</error>") {
                result(
                    SendStatus::Sent,
                    Some(protocol),
                    Some(endpoint),
                    status,
                    "accepted",
                )
            } else {
                let message = body
                    .split("<message>")
                    .nth(1)
                    .and_then(|m| m.split("</message>").next())
                    .unwrap_or("the trackback was refused");
                result(
                    SendStatus::Failed,
                    Some(protocol),
                    Some(endpoint),
                    status,
                    message,
                )
            }
        }
    }
}

fn form(fields: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish()
}
