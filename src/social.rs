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

use crate::config::SocialSource;
use crate::fetch::{Request, Trust};
use crate::model::OrLog;
use crate::model::{Kind, match_key, now_rfc3339};
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
struct Source<'a> {
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

const DAY: i64 = 86_400;
/// Result pages asked for at most, per post and crawl (HN pages, Bluesky cursors).
const HN_MAX_PAGES: i64 = 3;
const BLUESKY_MAX_PAGES: usize = 3;

/// How often a post is asked about: every crawl while it is new, then rarely.
fn poll_interval_secs(age_secs: i64) -> i64 {
    match age_secs {
        a if a < 2 * DAY => 0,
        a if a < 30 * DAY => DAY / 4,
        _ => 7 * DAY,
    }
}

/// Posts due for `source`, newest first.
fn due_posts(ctx: &Context, source: &str) -> Vec<PostRef> {
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

fn mark_polled(ctx: &Context, source: &str, post: &PostRef) {
    ctx.store
        .set_social_polled(source, &post.key, &now_rfc3339())
        .or_log("social state not kept");
}

/// Seconds until a reset announced in headers: `Retry-After`, Reddit's seconds, Bluesky's epoch
/// seconds, Mastodon's ISO 8601.
fn reset_secs(fetched: &crate::fetch::Fetched) -> u64 {
    let header = |name: &str| {
        fetched
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(s) = fetched.retry_after {
        return s;
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
async fn api_json(
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
fn in_secs(secs: u64) -> String {
    (chrono::Utc::now() + chrono::Duration::seconds(secs.min(7 * DAY as u64) as i64 + 1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn join(api: &Url, path: &str) -> Url {
    let base = api.as_str().trim_end_matches('/');
    Url::parse(&format!("{base}{path}")).unwrap_or_else(|_| api.clone())
}

// ---- Hacker News ---------------------------------------------------------------------------

async fn hackernews(
    ctx: &Context,
    src: &mut Source<'_>,
    posts: &[PostRef],
) -> Result<Vec<Hit>, SourceError> {
    let mut hits = Vec::new();
    for post in posts {
        let key = match_key(&post.url).unwrap_or_default();
        // Incremental: only stories newer than the newest already seen for this post.
        let since: i64 = ctx
            .store
            .social_since(src.name, &post.key)
            .ok()
            .flatten()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut newest = since;
        let mut all_hits = Vec::new();
        for page in 0..HN_MAX_PAGES {
            let mut url = join(&src.api, "/search");
            // Algolia tokenises URLs: search host+path, then keep only exact matches.
            let query = key.trim_end_matches('/');
            url.query_pairs_mut()
                .append_pair("query", query)
                .append_pair("restrictSearchableAttributes", "url")
                .append_pair("tags", "story")
                .append_pair("hitsPerPage", "50")
                .append_pair("page", &page.to_string());
            if since > 0 {
                url.query_pairs_mut()
                    .append_pair("numericFilters", &format!("created_at_i>{since}"));
            }
            let answer = api_json(ctx, src, url, None, None).await?;
            all_hits.extend(answer["hits"].as_array().cloned().unwrap_or_default());
            let answered_page = answer["page"].as_i64().unwrap_or(page);
            if answer["nbPages"].as_i64().unwrap_or(0) <= answered_page + 1 || src.budget == 0 {
                break;
            }
        }
        for hit in &all_hits {
            newest = newest.max(hit["created_at_i"].as_i64().unwrap_or(0));
            let (Some(id), Some(story)) = (str_of(hit, "objectID"), str_of(hit, "url")) else {
                continue;
            };
            if match_key(story).as_deref() != Some(key.as_str()) {
                continue;
            }
            let author = str_of(hit, "author");
            let points = hit["points"].as_i64().unwrap_or(0);
            let comments = hit["num_comments"].as_i64().unwrap_or(0);
            hits.push(Hit {
                source: format!("https://news.ycombinator.com/item?id={id}"),
                post_url: post.url.clone(),
                evidence: RecordEvidence {
                    mention_type: Some("mention".into()),
                    title: str_of(hit, "title").map(str::to_string),
                    author_name: author.map(str::to_string),
                    author_url: author.map(|a| format!("https://news.ycombinator.com/user?id={a}")),
                    published: str_of(hit, "created_at").and_then(crate::verify::normalize_date),
                    text: Some(format!(
                        "{points} points · {comments} comments on Hacker News"
                    )),
                    ..Default::default()
                },
            });
        }
        ctx.store
            .set_social_since(src.name, &post.key, &newest.to_string())
            .or_log("social state not kept");
        mark_polled(ctx, src.name, post);
    }
    Ok(hits)
}

// ---- Reddit --------------------------------------------------------------------------------

/// The exact-string variants Reddit may have been given for one post URL.
fn url_variants(post: &str) -> Vec<String> {
    let Ok(url) = Url::parse(post) else {
        return vec![post.to_string()];
    };
    let mut out = Vec::new();
    for scheme in ["https", "http"] {
        let mut u = url.clone();
        let _ = u.set_scheme(scheme);
        let with = u.to_string();
        let without = if u.path().len() > 1 && u.path().ends_with('/') {
            let mut v = u.clone();
            let trimmed = v.path().trim_end_matches('/').to_string();
            v.set_path(&trimmed);
            v.to_string()
        } else {
            format!("{}/", with.trim_end_matches('/'))
        };
        for candidate in [with, without] {
            if !out.contains(&candidate) {
                out.push(candidate);
            }
        }
    }
    out
}

/// Requests per crawl with app-only OAuth (Reddit allows 100 a minute per client).
const REDDIT_OAUTH_BUDGET: usize = 90;

/// App-only OAuth, when the client id and secret are in the environment: a client-credentials
/// token, and the OAuth API's larger budget. `None` means anonymous.
async fn reddit_oauth(
    ctx: &Context,
    src: &mut Source<'_>,
) -> Result<Option<(Url, String)>, SourceError> {
    use base64::Engine;
    let id_var = src
        .cfg
        .client_id_env
        .clone()
        .unwrap_or_else(|| "BACKFEED_REDDIT_CLIENT_ID".into());
    let secret_var = src
        .cfg
        .client_secret_env
        .clone()
        .unwrap_or_else(|| "BACKFEED_REDDIT_CLIENT_SECRET".into());
    let (Ok(id), Ok(secret)) = (std::env::var(&id_var), std::env::var(&secret_var)) else {
        return Ok(None);
    };
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
    let form = (
        "application/x-www-form-urlencoded",
        "grant_type=client_credentials".to_string(),
    );
    let answer = api_json(
        ctx,
        src,
        join(&src.api, "/api/v1/access_token"),
        Some(&format!("Basic {basic}")),
        Some(form),
    )
    .await
    .map_err(|e| match e {
        SourceError::Auth(_) => SourceError::Auth(format!(
            "Reddit refused the app credentials: check ${id_var} and ${secret_var}"
        )),
        other => other,
    })?;
    let token = str_of(&answer, "access_token").ok_or_else(|| {
        SourceError::Auth(format!(
            "Reddit gave no token: check ${id_var} and ${secret_var}"
        ))
    })?;
    let base = src
        .cfg
        .oauth_api_base
        .as_deref()
        .unwrap_or("https://oauth.reddit.com");
    let base = Url::parse(base).map_err(|e| SourceError::Other(format!("oauth_api_base: {e}")))?;
    src.budget = REDDIT_OAUTH_BUDGET;
    Ok(Some((base, token.to_string())))
}

async fn reddit(
    ctx: &Context,
    src: &mut Source<'_>,
    posts: &[PostRef],
) -> Result<Vec<Hit>, SourceError> {
    let oauth = reddit_oauth(ctx, src).await?;
    let mut hits = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for post in posts {
        let variants = url_variants(&post.url);
        if src.budget < variants.len() {
            break; // the rest waits for a later crawl
        }
        for variant in variants {
            let mut url = match &oauth {
                Some((base, _)) => join(base, "/api/info"),
                None => join(&src.api, "/api/info.json"),
            };
            url.query_pairs_mut()
                .append_pair("url", &variant)
                .append_pair("limit", "100");
            let bearer = oauth.as_ref().map(|(_, token)| format!("bearer {token}"));
            let answer = api_json(ctx, src, url, bearer.as_deref(), None).await?;
            for child in answer["data"]["children"].as_array().into_iter().flatten() {
                let d = &child["data"];
                let Some(permalink) = str_of(d, "permalink") else {
                    continue;
                };
                if !seen.insert(permalink.to_string()) {
                    continue;
                }
                let author = str_of(d, "author");
                hits.push(Hit {
                    source: format!("https://www.reddit.com{permalink}"),
                    post_url: post.url.clone(),
                    evidence: RecordEvidence {
                        mention_type: Some("mention".into()),
                        title: str_of(d, "title").map(str::to_string),
                        author_name: author.map(|a| format!("u/{a}")),
                        author_url: author.map(|a| format!("https://www.reddit.com/user/{a}")),
                        published: d["created_utc"].as_f64().and_then(|t| {
                            chrono::DateTime::from_timestamp(t as i64, 0)
                                .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                        }),
                        text: Some(format!(
                            "{} points · {} comments in {}",
                            d["score"].as_i64().unwrap_or(0),
                            d["num_comments"].as_i64().unwrap_or(0),
                            str_of(d, "subreddit_name_prefixed").unwrap_or("Reddit")
                        )),
                        ..Default::default()
                    },
                });
            }
        }
        mark_polled(ctx, src.name, post);
    }
    Ok(hits)
}

// ---- Bluesky -------------------------------------------------------------------------------

async fn bluesky_login(ctx: &Context, src: &mut Source<'_>) -> Result<String, SourceError> {
    let var = src
        .cfg
        .password_env
        .clone()
        .unwrap_or_else(|| "BACKFEED_BLUESKY_PASSWORD".into());
    let identifier = src
        .cfg
        .identifier
        .clone()
        .ok_or_else(|| SourceError::Auth("set [sources.bluesky] identifier".into()))?;
    let password = std::env::var(&var)
        .map_err(|_| SourceError::Auth(format!("set ${var} to a Bluesky app password")))?;
    let body = serde_json::json!({"identifier": identifier, "password": password}).to_string();
    let answer = api_json(
        ctx,
        src,
        join(&src.api, "/xrpc/com.atproto.server.createSession"),
        None,
        Some(("application/json", body)),
    )
    .await
    .map_err(|e| match e {
        SourceError::Auth(_) | SourceError::Other(_) => SourceError::Auth(format!(
            "Bluesky login as {identifier} refused: check ${var}"
        )),
        other => other,
    })?;
    remember_bluesky_session(ctx, &answer)
}

/// Keeps a Bluesky session's tokens in memory (never in the store) and returns the access token.
fn remember_bluesky_session(ctx: &Context, answer: &Value) -> Result<String, SourceError> {
    let access = str_of(answer, "accessJwt")
        .ok_or_else(|| SourceError::Auth("Bluesky gave no accessJwt".into()))?;
    let mut credentials = ctx.credentials.lock().unwrap_or_else(|p| p.into_inner());
    credentials.insert("bluesky:access".into(), access.to_string());
    if let Some(refresh) = str_of(answer, "refreshJwt") {
        credentials.insert("bluesky:refresh".into(), refresh.to_string());
    }
    Ok(access.to_string())
}

/// An expired session: `refreshSession` with the refresh token, else a new login.
async fn bluesky_refresh(ctx: &Context, src: &mut Source<'_>) -> Result<String, SourceError> {
    let refresh = ctx
        .credentials
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get("bluesky:refresh")
        .cloned();
    if let Some(refresh) = refresh {
        let url = join(&src.api, "/xrpc/com.atproto.server.refreshSession");
        let empty = Some(("", String::new()));
        if let Ok(answer) = api_json(ctx, src, url, Some(&format!("Bearer {refresh}")), empty).await
        {
            return remember_bluesky_session(ctx, &answer);
        }
    }
    bluesky_login(ctx, src).await
}

/// Link URIs a post record carries: rich-text link facets and external embeds (also inside
/// record-with-media). The text itself is often truncated and is not evidence.
fn bluesky_links(record: &Value) -> Vec<String> {
    let mut links = Vec::new();
    for facet in record["facets"].as_array().into_iter().flatten() {
        for feature in facet["features"].as_array().into_iter().flatten() {
            if str_of(feature, "$type").is_some_and(|t| t.ends_with("#link"))
                && let Some(uri) = str_of(feature, "uri")
            {
                links.push(uri.to_string());
            }
        }
    }
    for embed in [&record["embed"], &record["embed"]["media"]] {
        if let Some(uri) = str_of(&embed["external"], "uri") {
            links.push(uri.to_string());
        }
    }
    links
}

async fn bluesky(
    ctx: &Context,
    src: &mut Source<'_>,
    posts: &[PostRef],
) -> Result<Vec<Hit>, SourceError> {
    let session = ctx
        .credentials
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get("bluesky:access")
        .cloned();
    let mut token = match session {
        Some(t) => t,
        None => bluesky_login(ctx, src).await?,
    };
    let mut hits = Vec::new();
    for post in posts {
        let key = match_key(&post.url).unwrap_or_default();
        // Incremental: posts since the newest already seen for this post, page by page.
        let since = ctx.store.social_since(src.name, &post.key).ok().flatten();
        let api = src.api.clone();
        let search = |cursor: Option<&str>| {
            let mut u = join(&api, "/xrpc/app.bsky.feed.searchPosts");
            u.query_pairs_mut()
                .append_pair("q", &post.url)
                .append_pair("url", &post.url)
                .append_pair("sort", "latest")
                .append_pair("limit", "100");
            if let Some(since) = &since {
                u.query_pairs_mut().append_pair("since", since);
            }
            if let Some(cursor) = cursor {
                u.query_pairs_mut().append_pair("cursor", cursor);
            }
            u
        };
        let mut pages = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..BLUESKY_MAX_PAGES {
            let page = match api_json(
                ctx,
                src,
                search(cursor.as_deref()),
                Some(&format!("Bearer {token}")),
                None,
            )
            .await
            {
                Err(SourceError::Auth(_)) | Err(SourceError::Other(_)) if src.budget > 2 => {
                    // An expired session answers 400 ExpiredToken (or 401): refresh it, once.
                    token = bluesky_refresh(ctx, src).await?;
                    api_json(
                        ctx,
                        src,
                        search(cursor.as_deref()),
                        Some(&format!("Bearer {token}")),
                        None,
                    )
                    .await?
                }
                other => other?,
            };
            cursor = str_of(&page, "cursor").map(str::to_string);
            let empty = page["posts"].as_array().is_none_or(|p| p.is_empty());
            pages.push(page);
            if cursor.is_none() || empty {
                break;
            }
        }
        let newest = pages
            .iter()
            .flat_map(|page| page["posts"].as_array().cloned().unwrap_or_default())
            .filter_map(|p| str_of(&p["record"], "createdAt").map(str::to_string))
            .max();
        if let Some(newest) = newest.filter(|n| since.as_ref().is_none_or(|s| n > s)) {
            ctx.store
                .set_social_since(src.name, &post.key, &newest)
                .or_log("social state not kept");
        }
        for p in pages
            .iter()
            .flat_map(|page| page["posts"].as_array().cloned().unwrap_or_default())
        {
            let p = &p;
            let record = &p["record"];
            if !bluesky_links(record)
                .iter()
                .any(|l| match_key(l).as_deref() == Some(key.as_str()))
            {
                continue;
            }
            let (Some(uri), Some(did)) = (str_of(p, "uri"), str_of(&p["author"], "did")) else {
                continue;
            };
            let rkey = uri.rsplit('/').next().unwrap_or_default();
            let handle = str_of(&p["author"], "handle").unwrap_or(did);
            hits.push(Hit {
                source: format!("https://bsky.app/profile/{did}/post/{rkey}"),
                post_url: post.url.clone(),
                evidence: RecordEvidence {
                    mention_type: Some("mention".into()),
                    author_name: str_of(&p["author"], "displayName")
                        .or(Some(handle))
                        .map(str::to_string),
                    author_url: Some(format!("https://bsky.app/profile/{handle}")),
                    author_photo: str_of(&p["author"], "avatar").map(str::to_string),
                    published: str_of(record, "createdAt").and_then(crate::verify::normalize_date),
                    text: str_of(record, "text").map(str::to_string),
                    ..Default::default()
                },
            });
        }
        mark_polled(ctx, src.name, post);
    }
    Ok(hits)
}

// ---- Mastodon ------------------------------------------------------------------------------

fn status_evidence(status: &Value, mention_type: &str) -> RecordEvidence {
    let account = &status["account"];
    let html = str_of(status, "content").unwrap_or("");
    let base = Url::parse(str_of(status, "url").unwrap_or("https://mastodon.invalid/"))
        .unwrap_or_else(|_| Url::parse("https://mastodon.invalid/").expect("static URL"));
    let content = crate::verify::sanitize(html, &base);
    RecordEvidence {
        mention_type: Some(mention_type.into()),
        author_name: str_of(account, "display_name")
            .or_else(|| str_of(account, "acct"))
            .map(str::to_string),
        author_url: str_of(account, "url").map(str::to_string),
        author_photo: str_of(account, "avatar").map(str::to_string),
        published: str_of(status, "created_at").and_then(crate::verify::normalize_date),
        text: Some(crate::text::collapse(&crate::verify::html_text(html))),
        content_html: (!content.is_empty()).then_some(content),
        ..Default::default()
    }
}

/// Posts of ours a status links to (its HTML and its preview card).
fn status_links(status: &Value, posts: &HashMap<String, String>) -> Vec<String> {
    let base = Url::parse(str_of(status, "url").unwrap_or("https://mastodon.invalid/"))
        .unwrap_or_else(|_| Url::parse("https://mastodon.invalid/").expect("static URL"));
    let html = str_of(status, "content").unwrap_or("");
    let links = crate::verify::Page::parse(html, &base)
        .map(|page| page.link_urls())
        .unwrap_or_default();
    let mut linked: Vec<String> = links
        .iter()
        .map(|u| u.to_string())
        .chain(str_of(&status["card"], "url").map(str::to_string))
        .filter_map(|u| posts.get(&match_key(&u)?).cloned())
        .collect();
    linked.sort();
    linked.dedup();
    linked
}

async fn mastodon(
    ctx: &Context,
    src: &mut Source<'_>,
    posts: &[PostRef],
) -> Result<Vec<Hit>, SourceError> {
    let var = src
        .cfg
        .token_env
        .clone()
        .unwrap_or_else(|| "BACKFEED_MASTODON_TOKEN".into());
    let bearer = std::env::var(&var).ok().map(|t| format!("Bearer {t}"));
    let index: HashMap<String, String> = posts
        .iter()
        .filter_map(|p| Some((match_key(&p.url)?, p.url.clone())))
        .collect();
    let auth_hint = |e: SourceError| match e {
        SourceError::Auth(m) => SourceError::Auth(format!("{m}: check ${var}")),
        other => other,
    };
    let mut hits = Vec::new();
    if let Some(account) = src.cfg.account.clone() {
        let mut lookup = join(&src.api, "/api/v1/accounts/lookup");
        lookup.query_pairs_mut().append_pair("acct", &account);
        let me = api_json(ctx, src, lookup, bearer.as_deref(), None)
            .await
            .map_err(auth_hint)?;
        let id = str_of(&me, "id")
            .ok_or_else(|| SourceError::Other(format!("no Mastodon account {account}")))?
            .to_string();
        let mut list = join(&src.api, &format!("/api/v1/accounts/{id}/statuses"));
        list.query_pairs_mut()
            .append_pair("limit", "40")
            .append_pair("exclude_reblogs", "true");
        let toots = api_json(ctx, src, list, bearer.as_deref(), None)
            .await
            .map_err(auth_hint)?;
        for toot in toots.as_array().into_iter().flatten() {
            let linked = status_links(toot, &index);
            let (Some(toot_id), Some(toot_url)) = (str_of(toot, "id"), str_of(toot, "url")) else {
                continue;
            };
            if linked.is_empty() || src.budget < 3 {
                continue;
            }
            // Every call to the instance carries the token: limits then count per account,
            // and instances in authorized-fetch mode refuse anonymous calls.
            let mut about = Vec::with_capacity(3);
            for what in ["context", "favourited_by", "reblogged_by"] {
                let url = join(&src.api, &format!("/api/v1/statuses/{toot_id}/{what}"));
                about.push(
                    api_json(ctx, src, url, bearer.as_deref(), None)
                        .await
                        .map_err(auth_hint)?,
                );
            }
            let [context, favs, boosts] = <[Value; 3]>::try_from(about).expect("three answers");
            for post_url in &linked {
                for reply in context["descendants"].as_array().into_iter().flatten() {
                    if let Some(url) = str_of(reply, "url") {
                        hits.push(Hit {
                            source: url.to_string(),
                            post_url: post_url.clone(),
                            evidence: status_evidence(reply, "reply"),
                        });
                    }
                }
                for (accounts, what, kind) in [
                    (&favs, "favourited", "like"),
                    (&boosts, "reblogged", "repost"),
                ] {
                    for acct in accounts.as_array().into_iter().flatten() {
                        let Some(acct_id) = str_of(acct, "id") else {
                            continue;
                        };
                        let evidence = RecordEvidence {
                            mention_type: Some(kind.into()),
                            author_name: str_of(acct, "display_name")
                                .or_else(|| str_of(acct, "acct"))
                                .map(str::to_string),
                            author_url: str_of(acct, "url").map(str::to_string),
                            author_photo: str_of(acct, "avatar").map(str::to_string),
                            ..Default::default()
                        };
                        hits.push(Hit {
                            source: format!("{toot_url}#{what}-by-{acct_id}"),
                            post_url: post_url.clone(),
                            evidence,
                        });
                    }
                }
            }
        }
    }
    if src.cfg.search {
        let bearer = bearer
            .as_deref()
            .ok_or_else(|| SourceError::Auth(format!("search needs a token: set ${var}")))?;
        for post in posts {
            let mut url = join(&src.api, "/api/v2/search");
            url.query_pairs_mut()
                .append_pair("q", &post.url)
                .append_pair("type", "statuses")
                .append_pair("resolve", "false")
                .append_pair("limit", "40");
            let answer = api_json(ctx, src, url, Some(bearer), None)
                .await
                .map_err(auth_hint)?;
            for status in answer["statuses"].as_array().into_iter().flatten() {
                let Some(url) = str_of(status, "url") else {
                    continue;
                };
                if status_links(status, &index).contains(&post.url) {
                    hits.push(Hit {
                        source: url.to_string(),
                        post_url: post.url.clone(),
                        evidence: status_evidence(status, "mention"),
                    });
                }
            }
            mark_polled(ctx, src.name, post);
        }
    }
    Ok(hits)
}

// ---- driving them --------------------------------------------------------------------------

/// Polls every enabled source once, within its budget; one broken source never stops the
/// others. Returns the hits turned into candidates.
pub async fn poll_all(ctx: &Context, summary: &mut crate::crawl::Summary) -> usize {
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
            "hackernews" => hackernews(ctx, &mut src, &posts).await,
            "reddit" => reddit(ctx, &mut src, &posts).await,
            "bluesky" => bluesky(ctx, &mut src, &posts).await,
            _ => mastodon(ctx, &mut src, &posts).await,
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
    fn reddit_variants_cover_scheme_and_slash() {
        let v = url_variants("https://b.example/2024/hello/");
        assert_eq!(
            v,
            [
                "https://b.example/2024/hello/",
                "https://b.example/2024/hello",
                "http://b.example/2024/hello/",
                "http://b.example/2024/hello"
            ]
        );
    }

    #[test]
    fn cadence_polls_new_posts_often_and_old_ones_rarely() {
        assert_eq!(poll_interval_secs(3600), 0);
        assert_eq!(poll_interval_secs(10 * DAY), DAY / 4);
        assert_eq!(poll_interval_secs(400 * DAY), 7 * DAY);
    }

    #[test]
    fn bluesky_links_come_from_facets_and_embeds_not_text() {
        let record = serde_json::json!({
            "text": "see https://b.example/2024/he...",
            "facets": [{"features": [{"$type": "app.bsky.richtext.facet#link", "uri": "https://b.example/a"}]}],
            "embed": {"$type": "app.bsky.embed.recordWithMedia", "media": {"external": {"uri": "https://b.example/b"}}}
        });
        assert_eq!(
            bluesky_links(&record),
            ["https://b.example/a", "https://b.example/b"]
        );
    }
}
