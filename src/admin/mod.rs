//! The operator's page at `/admin/`, on when `[admin] password_env` names a set variable: the
//! moderation queue, all mentions (filtered, paged), the decision log, sent pings, blocked
//! domains and the status of schedules and sources — what `backfeed moderate`, `mentions`,
//! `log`, `sent`, `block` and `status` show, for a person in a browser.
//!
//! The rules it keeps: no state changes on GET; every POST needs a live session and the
//! session's CSRF token (SameSite=Strict cookies already keep other sites' forms out; the token
//! is the second lock); every page is server-rendered and works without JavaScript; every
//! response says `no-store` and may not be framed. Who may enter is [`crate::server::auth`] (the server's, so that
//! the server holds the gate without needing this module); what is shown is
//! [`pages`]; what changes goes through the same store calls as the CLI, so the decision log,
//! the feeds and the notifications follow every click exactly as they follow a command.
//!
//! Many sites: the host's operator (`[admin] password_env`) sees every site, with a site
//! filter on every listing and per-site counts on the status page. A site's owner (its
//! `admin_password_env`) gets a session bound to that site: every listing is narrowed to it
//! whatever the URL asks, every id a form or a URL names is checked to be that site's (another
//! site's mention is answered as if it did not exist), and what belongs to the whole host —
//! domain blocks, the status of schedules and processes — is refused (403).

pub mod pages;

use crate::model::{Kind, MentionType, Status, match_key};
use crate::server::auth::{
    SESSION_COOKIE, SIGN_IN_COOKIE, SignIn, cookie_value, random_token, same_secret,
};
use crate::server::{Shared, plain, store_error};
use crate::store::{DecisionFilter, MentionFilter};
use axum::Router;
use axum::extract::{ConnectInfo, Form, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use pages::{Frame, LogFilters, MentionFilters};
use std::net::SocketAddr;

/// Entries on one page of a listing.
const PAGE_SIZE: u32 = 50;

/// The admin routes (merged into the router only when the page is on).
pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/admin", get(|| async { Redirect::permanent("/admin/") }))
        .route("/admin/", get(queue))
        .route("/admin/login", get(sign_in_page).post(sign_in))
        .route("/admin/logout", post(sign_out))
        .route("/admin/mentions", get(mentions))
        .route("/admin/mentions/{id}/{action}", post(moderate))
        .route("/admin/bulk", post(bulk))
        .route("/admin/log", get(log))
        .route("/admin/sent", get(sent))
        .route("/admin/blocks", get(blocks).post(block))
        .route("/admin/blocks/unblock", post(unblock))
        .route("/admin/status", get(status))
        .route("/admin/admin.css", get(stylesheet))
        .layer(axum::middleware::map_response(private_headers))
}

/// Every admin answer: never cached, never framed, no referrer to the sources it links to,
/// and a policy that lets the page load nothing but its own stylesheet.
async fn private_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    for (name, value) in [
        (header::CACHE_CONTROL, "no-store"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// Why a request ends before its page: a refusal, a redirect, or the store failing. Small, so
/// handlers can use `?` and keep their happy path straight.
pub enum Stop {
    Refused(StatusCode, String),
    SignInFirst,
    Store(crate::store::StoreError),
}

impl From<crate::store::StoreError> for Stop {
    fn from(e: crate::store::StoreError) -> Stop {
        Stop::Store(e)
    }
}

impl IntoResponse for Stop {
    fn into_response(self) -> Response {
        match self {
            Stop::Refused(status, reason) => plain(status, reason),
            Stop::SignInFirst => Redirect::to("/admin/login").into_response(),
            Stop::Store(e) => store_error(e),
        }
    }
}

/// The answer of an admin handler.
type Answer = Result<Response, Stop>;

/// A request with a live session: its cookie token, its CSRF token, and the site it may see
/// (`None`: the host's operator, every site).
pub struct Signed {
    token: String,
    csrf: String,
    site: Option<String>,
}

impl FromRequestParts<Shared> for Signed {
    type Rejection = Stop;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, Stop> {
        let Some(gate) = state.admin.as_ref() else {
            return Err(Stop::Refused(StatusCode::NOT_FOUND, String::new()));
        };
        let session = cookie_value(&parts.headers, SESSION_COOKIE)
            .and_then(|token| gate.session(&token).map(|(csrf, site)| (token, csrf, site)));
        // A site's owner whose site is no longer served is signed out with it.
        let session = session.filter(|(_, _, site)| {
            site.as_deref()
                .is_none_or(|name| state.ctx.sites().named(name).is_some())
        });
        match session {
            Some((token, csrf, site)) => Ok(Signed { token, csrf, site }),
            None if parts.method == Method::GET => Err(Stop::SignInFirst),
            None => Err(Stop::Refused(
                StatusCode::FORBIDDEN,
                "not signed in, or the session expired: sign in at /admin/login and try again\n"
                    .into(),
            )),
        }
    }
}

impl Signed {
    /// The site a listing shows: the session's own, whatever is asked; for the host's
    /// operator the one asked for (a filter), or every site.
    fn site_shown(&self, asked: &str) -> Option<String> {
        self.site
            .clone()
            .or_else(|| Some(asked.trim().to_string()).filter(|s| !s.is_empty()))
    }

    /// Refuses what belongs to the whole host (blocks, the status page) to a site's owner.
    fn host_only(&self) -> Result<(), Stop> {
        match &self.site {
            None => Ok(()),
            Some(site) => Err(Stop::Refused(
                StatusCode::FORBIDDEN,
                format!(
                    "this page belongs to the host's operator; you are signed in for site {site}\n"
                ),
            )),
        }
    }

    /// The mentions of `ids` this session may change: all for the host's operator, a site
    /// owner's own for a site's (another site's are as if they did not exist).
    fn own_mentions(&self, store: &crate::store::Store, ids: Vec<i64>) -> Result<Vec<i64>, Stop> {
        let Some(site) = &self.site else {
            return Ok(ids);
        };
        let mut own = Vec::new();
        for id in ids {
            if store.mention_site(id)?.as_deref() == Some(site.as_str()) {
                own.push(id);
            }
        }
        Ok(own)
    }

    /// Refuses a form whose CSRF token is not this session's.
    fn check(&self, given: &str) -> Result<(), Stop> {
        if !given.is_empty() && same_secret(given, &self.csrf) {
            Ok(())
        } else {
            Err(Stop::Refused(
                StatusCode::FORBIDDEN,
                "this form is stale or came from another site: reload the page and try again\n"
                    .into(),
            ))
        }
    }
}

/// The fields the action forms carry.
#[derive(serde::Deserialize, Default)]
struct ActionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    back: String,
    #[serde(default)]
    domain: String,
}

/// `?done=` after an action: a fixed phrase, so a crafted link cannot put words on the page.
#[derive(serde::Deserialize, Default)]
struct Done {
    done: Option<String>,
}

fn notice(done: &Done) -> Option<String> {
    let phrase = match done.done.as_deref()? {
        "approved" => "Approved: the mention is published.",
        "rejected" => "Rejected: the mention is hidden, and stays hidden through later pings.",
        "blocked" => "Domain blocked: its mentions are hidden and new ones are refused.",
        "unblocked" => "Domain unblocked: its mentions are back.",
        "not_blocked" => "That domain was not blocked here (blocks from the config file stay).",
        "none_selected" => "Nothing was selected: tick the mentions first.",
        "bad_domain" => "That is not a domain name (for example: spam.example).",
        "gone" => "That mention no longer exists.",
        _ => return None,
    };
    Some(phrase.to_string())
}

/// Where an action goes back to: an admin page named by the form, else the queue.
fn back_to(back: &str, done: &str) -> Response {
    let safe = back.starts_with("/admin/")
        && !back.contains("//")
        && !back.contains('\\')
        && !back.chars().any(char::is_control);
    let path = if safe { back } else { "/admin/" };
    // Drop an earlier notice, keep the filters.
    let (base, query) = path.split_once('?').unwrap_or((path, ""));
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in form_urlencoded::parse(query.as_bytes()).filter(|(k, _)| k != "done") {
        q.append_pair(&k, &v);
    }
    q.append_pair("done", done);
    Redirect::to(&format!("{base}?{}", q.finish())).into_response()
}

fn frame<'a>(state: &'a Shared, signed: &'a Signed, done: &Done) -> Result<Frame<'a>, Stop> {
    let sites = state.ctx.sites();
    let own = signed.site.as_deref().and_then(|name| sites.named(name));
    Ok(Frame {
        site_title: state.ctx.feed_names(own).title,
        csrf: &signed.csrf,
        notice: notice(done),
        held: state
            .ctx
            .store
            .count_with_status_in(Status::Held, signed.site.as_deref())?,
        // The filter is the host's operator's, and only worth a choice among several.
        sites: if signed.site.is_none() && sites.list.len() > 1 {
            sites.list.iter().map(|s| s.name.clone()).collect()
        } else {
            Vec::new()
        },
    })
}

fn html(markup: maud::Markup) -> Answer {
    Ok(Html(markup.into_string()).into_response())
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        pages::CSS,
    )
        .into_response()
}

async fn queue(State(state): State<Shared>, signed: Signed, Query(done): Query<Done>) -> Answer {
    let held = state.ctx.store.mentions(&MentionFilter {
        status: Some(Status::Held),
        ascending: true,
        limit: Some(200),
        site: signed.site.clone(),
        ..Default::default()
    })?;
    let sites = state.ctx.sites();
    let moderated = match signed.site.as_deref().and_then(|name| sites.named(name)) {
        Some(site) => site.holds,
        None => state.ctx.cfg.moderation.holds() || sites.list.iter().any(|s| s.holds),
    };
    let posts = post_titles(&state, &held)?;
    html(pages::queue(
        &frame(&state, &signed, &done)?,
        &held,
        moderated,
        &posts,
    ))
}

/// The titles of the posts `list` is about, by match key (for the table's "About" column).
fn post_titles(
    state: &Shared,
    list: &[crate::model::Mention],
) -> Result<std::collections::HashMap<String, String>, Stop> {
    let mut keys: Vec<String> = list
        .iter()
        .filter_map(|m| crate::model::match_key(&m.target))
        .collect();
    keys.sort();
    keys.dedup();
    Ok(state
        .ctx
        .store
        .posts_by_match_keys(&keys)?
        .into_iter()
        .filter_map(|(key, post)| Some((key, post.title?)))
        .collect())
}

/// A filter word from a form: empty is "any", a known word is itself, anything else a 400.
fn word<T>(text: &str, what: &str, parse: impl Fn(&str) -> Option<T>) -> Result<Option<T>, Stop> {
    if text.is_empty() {
        return Ok(None);
    }
    parse(text).map(Some).ok_or_else(|| {
        Stop::Refused(
            StatusCode::BAD_REQUEST,
            format!("unknown {what} {text:?}: choose one from the list\n"),
        )
    })
}

/// The page asked for (from 1), and the (limit, offset) that reads it and tells whether
/// another follows: one row more than a page.
fn paging(page: Option<u32>) -> (u32, i64, i64) {
    let page = page.unwrap_or(1).clamp(1, 100_000);
    (
        page,
        i64::from(PAGE_SIZE) + 1,
        i64::from((page - 1) * PAGE_SIZE),
    )
}

/// Cuts the extra row [`paging`] read; says whether there was one.
fn one_page<T>(rows: &mut Vec<T>) -> bool {
    let more = rows.len() > PAGE_SIZE as usize;
    rows.truncate(PAGE_SIZE as usize);
    more
}

async fn mentions(
    State(state): State<Shared>,
    signed: Signed,
    Query(f): Query<MentionFilters>,
    Query(done): Query<Done>,
    uri: axum::http::Uri,
) -> Answer {
    let post = f.post.trim();
    let target_keys = if post.is_empty() {
        Vec::new()
    } else {
        vec![match_key(post).ok_or_else(|| {
            Stop::Refused(
                StatusCode::BAD_REQUEST,
                "the post filter takes a post's full URL (https://…)\n".into(),
            )
        })?]
    };
    let (page, limit, offset) = paging(f.page);
    let mut list = state.ctx.store.mentions(&MentionFilter {
        target_keys,
        status: word(&f.status, "status", Status::parse)?,
        kind: word(&f.kind, "kind", Kind::parse)?,
        types: word(&f.mention_type, "type", MentionType::parse)?
            .into_iter()
            .collect(),
        text: Some(f.q.clone()),
        site: signed.site_shown(&f.site),
        limit: Some(limit),
        offset,
        ..Default::default()
    })?;
    let has_next = one_page(&mut list);
    let back = uri
        .path_and_query()
        .map_or("/admin/mentions", |p| p.as_str());
    let frame = frame(&state, &signed, &done)?;
    let posts = post_titles(&state, &list)?;
    html(pages::mentions(
        &frame, &f, &list, page, has_next, back, &posts,
    ))
}

/// The table's form: `action` (approve, reject, block) for every checked `id`, or a row's
/// `block_domain`. Every id is checked against the store; ones that are gone are passed over.
async fn bulk(
    State(state): State<Shared>,
    signed: Signed,
    Form(fields): Form<Vec<(String, String)>>,
) -> Answer {
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    signed.check(&field("csrf"))?;
    let back = field("back");
    if let Some(domain) = crate::model::domain_name(&field("block_domain")) {
        signed.host_only()?;
        let name = domain.clone();
        let hidden = write(&state, move |s| s.block(&name)).await?;
        tracing::info!(domain = %domain, hidden, "blocked on the operator's page");
        return Ok(back_to(&back, "blocked"));
    }
    let ids: Vec<i64> = fields
        .iter()
        .filter(|(k, _)| k == "id")
        .filter_map(|(_, v)| v.parse().ok())
        .collect();
    if ids.is_empty() {
        return Ok(back_to(&back, "none_selected"));
    }
    let ids = signed.own_mentions(&state.ctx.store, ids)?;
    if ids.is_empty() {
        return Ok(back_to(&back, "gone"));
    }
    let action = field("action");
    if action == "block" {
        signed.host_only()?;
    }
    let done = match action.as_str() {
        "approve" | "reject" => {
            let approve = action == "approve";
            write(&state, move |s| {
                for id in &ids {
                    if approve {
                        s.approve(*id)?;
                    } else {
                        s.reject(*id)?;
                    }
                }
                Ok(())
            })
            .await?;
            if approve { "approved" } else { "rejected" }
        }
        "block" => {
            write(&state, move |s| {
                let mut domains: Vec<String> = Vec::new();
                for id in &ids {
                    if let Some(host) = s
                        .mention(*id)?
                        .and_then(|m| crate::model::host_of(&m.source))
                        && !domains.contains(&host)
                    {
                        domains.push(host);
                    }
                }
                for domain in &domains {
                    s.block(domain)?;
                }
                Ok(())
            })
            .await?;
            "blocked"
        }
        _ => {
            return Err(Stop::Refused(
                StatusCode::BAD_REQUEST,
                "no such action: approve, reject or block\n".into(),
            ));
        }
    };
    tracing::info!(action = %action, "bulk moderation on the operator's page");
    Ok(back_to(&back, done))
}

async fn log(
    State(state): State<Shared>,
    signed: Signed,
    Query(f): Query<LogFilters>,
    Query(done): Query<Done>,
) -> Answer {
    let (page, limit, offset) = paging(f.page);
    let store = &state.ctx.store;
    let mut lines = store.decisions(&DecisionFilter {
        outcome: Some(f.outcome.clone()).filter(|o| !o.is_empty()),
        kind: Some(f.kind.clone()).filter(|k| !k.is_empty()),
        text: Some(f.q.clone()),
        site: signed.site_shown(&f.site),
        limit,
        offset,
    })?;
    let has_next = one_page(&mut lines);
    let outcomes = store.decision_outcomes()?;
    let frame = frame(&state, &signed, &done)?;
    html(pages::log(&frame, &f, &outcomes, &lines, page, has_next))
}

#[derive(serde::Deserialize, Default)]
struct PageQuery {
    page: Option<u32>,
    #[serde(default)]
    site: String,
}

async fn sent(
    State(state): State<Shared>,
    signed: Signed,
    Query(q): Query<PageQuery>,
    Query(done): Query<Done>,
) -> Answer {
    let (page, limit, offset) = paging(q.page);
    let site = signed.site_shown(&q.site);
    let mut shown = state
        .ctx
        .store
        .sends(None, site.as_deref(), limit, offset)?;
    let has_next = one_page(&mut shown);
    html(pages::sent(
        &frame(&state, &signed, &done)?,
        &shown,
        page,
        has_next,
    ))
}

async fn blocks(State(state): State<Shared>, signed: Signed, Query(done): Query<Done>) -> Answer {
    signed.host_only()?;
    let blocked = state.ctx.store.blocked_domains()?;
    let from_config = &state.ctx.cfg.moderation.blocked_domains;
    html(pages::blocks(
        &frame(&state, &signed, &done)?,
        &blocked,
        from_config,
    ))
}

async fn status(State(state): State<Shared>, signed: Signed, Query(done): Query<Done>) -> Answer {
    signed.host_only()?;
    let report = crate::status::StatusReport::gather(&state.ctx)?;
    html(pages::status(&frame(&state, &signed, &done)?, &report))
}

async fn moderate(
    State(state): State<Shared>,
    signed: Signed,
    Path((id, action)): Path<(i64, String)>,
    Form(form): Form<ActionForm>,
) -> Answer {
    signed.check(&form.csrf)?;
    if signed.own_mentions(&state.ctx.store, vec![id])?.is_empty() {
        return Ok(back_to(&form.back, "gone"));
    }
    let (result, done) = match action.as_str() {
        "approve" => (write(&state, move |s| s.approve(id)).await?, "approved"),
        "reject" => (write(&state, move |s| s.reject(id)).await?, "rejected"),
        _ => {
            return Err(Stop::Refused(
                StatusCode::NOT_FOUND,
                "no such action: approve or reject\n".into(),
            ));
        }
    };
    let Some(now) = result else {
        return Ok(back_to(&form.back, "gone"));
    };
    tracing::info!(mention = id, action = %action, status = now.as_str(), "moderated on the operator's page");
    Ok(back_to(&form.back, done))
}

async fn block(
    State(state): State<Shared>,
    signed: Signed,
    Form(form): Form<ActionForm>,
) -> Answer {
    change_block(&state, &signed, &form, false).await
}

async fn unblock(
    State(state): State<Shared>,
    signed: Signed,
    Form(form): Form<ActionForm>,
) -> Answer {
    change_block(&state, &signed, &form, true).await
}

/// Blocks the form's domain, or lifts its block.
async fn change_block(state: &Shared, signed: &Signed, form: &ActionForm, lift: bool) -> Answer {
    signed.check(&form.csrf)?;
    signed.host_only()?;
    let Some(domain) = crate::model::domain_name(&form.domain) else {
        return Ok(back_to(&form.back, "bad_domain"));
    };
    let name = domain.clone();
    let done = if lift {
        match write(state, move |s| s.unblock(&name)).await? {
            Some(restored) => {
                tracing::info!(domain = %domain, restored, "unblocked on the operator's page");
                "unblocked"
            }
            None => "not_blocked",
        }
    } else {
        let hidden = write(state, move |s| s.block(&name)).await?;
        tracing::info!(domain = %domain, hidden, "blocked on the operator's page");
        "blocked"
    };
    Ok(back_to(&form.back, done))
}

/// Runs one of the page's writes (moderation, blocks) on the blocking pool: a write may wait
/// for the store's lock, and must not hold an async thread while it does.
async fn write<T: Send + 'static>(
    state: &Shared,
    change: impl FnOnce(&crate::store::Store) -> Result<T, crate::store::StoreError> + Send + 'static,
) -> Result<T, Stop> {
    let store = state.ctx.store.clone();
    tokio::task::spawn_blocking(move || change(&store))
        .await
        .map_err(|e| Stop::Refused(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")))?
        .map_err(Stop::from)
}

#[derive(serde::Deserialize, Default)]
struct SignInForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
}

/// The sign-in page with a fresh form token (kept in its own cookie until a session exists).
fn sign_in_form(state: &Shared, status: StatusCode, problem: Option<&str>) -> Response {
    let Some(gate) = state.admin.as_ref() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let token = random_token();
    let mut response = (
        status,
        Html(pages::sign_in(&state.ctx.feed_names(None).title, &token, problem).into_string()),
    )
        .into_response();
    if let Ok(cookie) = HeaderValue::from_str(&gate.cookie(SIGN_IN_COOKIE, Some(&token))) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

async fn sign_in_page(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let signed_in = state.admin.as_ref().is_some_and(|gate| {
        cookie_value(&headers, SESSION_COOKIE).is_some_and(|t| gate.session_csrf(&t).is_some())
    });
    if signed_in {
        return Redirect::to("/admin/").into_response();
    }
    sign_in_form(&state, StatusCode::OK, None)
}

async fn sign_in(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    let Some(gate) = state.admin.as_ref() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let expected = cookie_value(&headers, SIGN_IN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !same_secret(&form.csrf, &expected) {
        return sign_in_form(
            &state,
            StatusCode::FORBIDDEN,
            Some("The sign-in form expired or came from another site. Please try again."),
        );
    }
    if let Some(hold) = gate.slowdown() {
        tokio::time::sleep(hold).await;
    }
    let owners: Vec<(String, String)> = state
        .ctx
        .sites()
        .list
        .iter()
        .filter_map(|s| Some((s.name.clone(), s.admin_password()?)))
        .collect();
    match gate.sign_in_as(peer.ip(), &form.password, &owners) {
        SignIn::Welcome(token) => {
            tracing::info!(client = %peer.ip(), "operator signed in");
            let mut response = Redirect::to("/admin/").into_response();
            for cookie in [
                gate.cookie(SESSION_COOKIE, Some(&token)),
                gate.cookie(SIGN_IN_COOKIE, None),
            ] {
                if let Ok(value) = HeaderValue::from_str(&cookie) {
                    response.headers_mut().append(header::SET_COOKIE, value);
                }
            }
            response
        }
        SignIn::WrongPassword => {
            tracing::warn!(client = %peer.ip(), "operator sign-in: wrong password");
            sign_in_form(&state, StatusCode::UNAUTHORIZED, Some("Wrong password."))
        }
        SignIn::Unavailable => sign_in_form(
            &state,
            StatusCode::SERVICE_UNAVAILABLE,
            Some("The store cannot keep a session just now (see the log). Please try again."),
        ),
        SignIn::Wait(wait) => {
            let secs = wait.as_secs() + 1;
            tracing::warn!(client = %peer.ip(), wait_secs = secs, "operator sign-in: throttled after repeated wrong passwords");
            let mut response = sign_in_form(
                &state,
                StatusCode::TOO_MANY_REQUESTS,
                Some(&format!(
                    "Too many wrong passwords. Wait {secs} s, then try again."
                )),
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            response
        }
    }
}

async fn sign_out(
    State(state): State<Shared>,
    signed: Signed,
    Form(form): Form<ActionForm>,
) -> Answer {
    signed.check(&form.csrf)?;
    let Some(gate) = state.admin.as_ref() else {
        return Ok(StatusCode::NOT_FOUND.into_response());
    };
    gate.sign_out(&signed.token);
    let mut response = Redirect::to("/admin/login").into_response();
    if let Ok(value) = HeaderValue::from_str(&gate.cookie(SESSION_COOKIE, None)) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_go_back_only_to_admin_pages() {
        let location = |back: &str| {
            back_to(back, "approved")
                .headers()
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        assert_eq!(
            location("/admin/mentions?status=held&done=gone"),
            "/admin/mentions?status=held&done=approved"
        );
        for hostile in [
            "https://evil.example/",
            "//evil.example/admin/",
            "/admin//evil",
            "/admin/\\evil",
            "/elsewhere",
        ] {
            assert_eq!(location(hostile), "/admin/?done=approved", "{hostile}");
        }
    }
}
