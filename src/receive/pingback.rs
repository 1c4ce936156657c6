//! Pingback 1.0 over XML-RPC: `pingback.ping` is verified while the caller waits (within the
//! fetch deadline) and answered with the spec's fault codes; `system.listMethods` and
//! `pingback.extensions.getPingbacks` too.

use super::xmlrpc::{self, Value};
use crate::model::{Kind, Status, match_key};
use crate::pipeline::{Context, Rejection};
use crate::server::Shared;
use crate::store::MentionFilter;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;

pub(crate) const FAULT_SOURCE_MISSING: i32 = 0x10;

pub(crate) const FAULT_NO_LINK: i32 = 0x11;

pub(crate) const FAULT_TARGET_MISSING: i32 = 0x20;

pub(crate) const FAULT_TARGET_INVALID: i32 = 0x21;

pub(crate) const FAULT_ALREADY: i32 = 0x30;

pub(crate) const FAULT_DENIED: i32 = 0x31;

pub(crate) fn xml_response(body: Vec<u8>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        body,
    )
        .into_response()
}

pub(crate) async fn xmlrpc_endpoint(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Bytes,
) -> Response {
    let call = match xmlrpc::parse_call(&body) {
        Ok(c) => c,
        Err(e) => return xml_response(xmlrpc::fault(e.fault_code(), &e.to_string())),
    };
    let strings: Vec<Option<&str>> = call.params.iter().map(Value::as_str).collect();
    match (call.method.as_str(), strings.as_slice()) {
        ("pingback.ping", [Some(source), Some(target)]) => {
            if let Some(limited) = state.rate_limited(peer.ip(), Some(source)) {
                return limited;
            }
            xml_response(pingback(&state.ctx, source, target).await)
        }
        ("pingback.ping", _) => xml_response(xmlrpc::fault(
            -32602,
            "pingback.ping takes two strings: sourceURI, targetURI",
        )),
        ("pingback.extensions.getPingbacks", [Some(url)]) => {
            xml_response(get_pingbacks(&state.ctx, url).await)
        }
        ("system.listMethods", []) => xml_response(xmlrpc::response(&Value::Array(
            [
                "pingback.ping",
                "pingback.extensions.getPingbacks",
                "system.listMethods",
            ]
            .into_iter()
            .map(|m| Value::String(m.into()))
            .collect(),
        ))),
        (method, _) => xml_response(xmlrpc::fault(
            -32601,
            &format!("method {method} is not supported"),
        )),
    }
}

/// `pingback.ping`: validate, commit, verify now (within the fetch deadline), answer.
pub(crate) async fn pingback(ctx: &Context, source: &str, target: &str) -> Vec<u8> {
    let (enqueued, post, leased) = match ctx.submit_to_check(source, target, Kind::Pingback).await {
        Ok(ok) => ok,
        Err(rejection) => {
            let code = match &rejection {
                Rejection::InvalidSource(_) => FAULT_SOURCE_MISSING,
                Rejection::InvalidTarget(_) => FAULT_TARGET_INVALID,
                Rejection::TargetNotFound(_) => FAULT_TARGET_MISSING,
                Rejection::Blocked(_) => FAULT_DENIED,
                Rejection::TargetUnavailable => 0x32,
                Rejection::SameResource | Rejection::Internal(_) => 0,
            };
            return xmlrpc::fault(code, &rejection.reason());
        }
    };
    if matches!(enqueued.status, Status::Verified | Status::Held) {
        // Re-queued above, so the stored mention is refreshed; the ping itself is a repeat.
        return xmlrpc::fault(FAULT_ALREADY, "the pingback has already been registered");
    }
    let processed = match leased {
        Some(job) => ctx.process(&job).await,
        None => return wait_for_worker(ctx, enqueued.id, source, &post.url).await,
    };
    pingback_answer(&processed.outcome, processed.status, source, &post.url)
}

pub(crate) fn pingback_answer(
    outcome: &crate::model::Outcome,
    status: Option<Status>,
    source: &str,
    target: &str,
) -> Vec<u8> {
    use crate::model::Outcome;
    match (outcome, status) {
        (Outcome::Verified(_), Some(Status::Held)) => xmlrpc::response(&Value::String(format!(
            "Pingback from {source} to {target} registered; it awaits moderation."
        ))),
        (Outcome::Verified(_), Some(Status::Rejected)) => {
            xmlrpc::fault(FAULT_DENIED, "access denied")
        }
        (Outcome::Verified(_), _) => xmlrpc::response(&Value::String(format!(
            "Pingback from {source} to {target} registered. Keep the web talking!"
        ))),
        (Outcome::NoLink(r), _) => xmlrpc::fault(FAULT_NO_LINK, r),
        (Outcome::Refused(r), _) if r.starts_with("blocked domain") => {
            xmlrpc::fault(FAULT_DENIED, r)
        }
        (o, _) => xmlrpc::fault(FAULT_SOURCE_MISSING, &o.reason()),
    }
}

/// The worker holds the job: wait (bounded) for its verdict.
pub(crate) async fn wait_for_worker(ctx: &Context, id: i64, source: &str, target: &str) -> Vec<u8> {
    let deadline = tokio::time::Instant::now()
        + std::time::Duration::from_secs(ctx.cfg.fetch.timeout_secs + 5);
    while tokio::time::Instant::now() < deadline {
        // Listen before looking, so a job finished in between is not missed.
        let finished = ctx.job_finished.notified();
        tokio::pin!(finished);
        finished.as_mut().enable();
        if let Ok(Some(m)) = ctx.store.mention(id)
            && !ctx.store.is_queued(id).unwrap_or(true)
        {
            return match m.status {
                Status::Verified | Status::Held => xmlrpc::response(&Value::String(format!(
                    "Pingback from {source} to {target} registered."
                ))),
                _ => xmlrpc::fault(FAULT_NO_LINK, m.reason.as_deref().unwrap_or("not verified")),
            };
        }
        let _ = tokio::time::timeout_at(deadline, finished).await;
    }
    xmlrpc::fault(
        FAULT_SOURCE_MISSING,
        "the source could not be checked in time; it will be retried",
    )
}

pub(crate) async fn get_pingbacks(ctx: &Context, url: &str) -> Vec<u8> {
    let Some(key) = match_key(url) else {
        return xmlrpc::fault(FAULT_TARGET_INVALID, "not a URL");
    };
    match ctx.store.post_by_match_key(&key) {
        Ok(Some(_)) => {}
        Ok(None) => return xmlrpc::fault(FAULT_TARGET_INVALID, "not a post of this site"),
        Err(e) => return xmlrpc::fault(0, &e.to_string()),
    }
    let filter = MentionFilter {
        target_keys: vec![key],
        status: Some(Status::Verified),
        ..Default::default()
    };
    match ctx.store.mentions(&filter) {
        Ok(list) => xmlrpc::response(&Value::Array(
            list.into_iter().map(|m| Value::String(m.source)).collect(),
        )),
        Err(e) => xmlrpc::fault(0, &e.to_string()),
    }
}
