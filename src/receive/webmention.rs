//! W3C Webmention: `POST /webmention` validates synchronously (400 with a reason), answers
//! `201 Created` with the status page's `Location` once the request is durable, and verifies
//! later; `GET /webmention/<token>` is that status page.

use crate::model::{Kind, Status};
use crate::pipeline::{Context, Rejection};
use crate::publish::{self};
use crate::server::{Shared, charset_of, field, form_fields, plain, store_error};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;

pub(crate) fn status_url(ctx: &Context, token: &str) -> String {
    format!("{}webmention/{token}", ctx.cfg.server.public_url)
}

pub(crate) async fn webmention(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ctx = &state.ctx;
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    if !is_form {
        return plain(
            StatusCode::BAD_REQUEST,
            "invalid_request: send source and target as application/x-www-form-urlencoded\n",
        );
    }
    let fields = form_fields(&body, charset_of(&headers).as_deref());
    let Some(source) = field(&fields, "source") else {
        return plain(StatusCode::BAD_REQUEST, "invalid_request: missing source\n");
    };
    let Some(target) = field(&fields, "target") else {
        return plain(StatusCode::BAD_REQUEST, "invalid_request: missing target\n");
    };
    if let Some(limited) = state.rate_limited(peer.ip(), Some(source)) {
        return limited;
    }
    match ctx.submit(source, target, Kind::Webmention, None).await {
        Ok((enqueued, _)) => {
            let location = status_url(ctx, &enqueued.status_token);
            let mut r = plain(
                StatusCode::CREATED,
                format!(
                    "Created: the source will be checked for a link to the target. Status: {location}\n"
                ),
            );
            if let Ok(v) = HeaderValue::from_str(&location) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            r
        }
        Err(Rejection::Internal(e)) => {
            tracing::error!(error = %e, "webmention not stored");
            let mut r = plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "internal_error: could not store the request; try again later\n",
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
            r
        }
        Err(rejection @ Rejection::TargetUnavailable) => {
            let mut r = plain(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{}: {}\n", rejection.code(), rejection.reason()),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("300"));
            r
        }
        Err(rejection) => plain(
            StatusCode::BAD_REQUEST,
            format!("{}: {}\n", rejection.code(), rejection.reason()),
        ),
    }
}

/// A reason as anyone holding a status URL may read it. Why a source could not be fetched is
/// told as "refused or unreachable": telling "not a public address" from "dns error" would let
/// a sender map which names resolve inside the host's network. The operator reads the whole
/// reason (`backfeed mentions`, the log, the operator's page).
fn public_reason(reason: &str) -> String {
    if reason.starts_with("fetching source:") && !reason.contains("timed out") {
        "fetching source: refused or unreachable".into()
    } else {
        reason.into()
    }
}

pub(crate) async fn webmention_status(
    State(state): State<Shared>,
    Path(token): Path<String>,
) -> Response {
    let ctx = &state.ctx;
    let found = ctx.store.mention_by_status_token(&token).and_then(|m| {
        m.map(|m| ctx.store.is_queued(m.id).map(|q| (m, q)))
            .transpose()
    });
    let (mention, queued) = match found {
        Ok(Some(found)) => found,
        Ok(None) => return plain(StatusCode::NOT_FOUND, "no such webmention\n"),
        Err(e) => {
            return store_error(e);
        }
    };
    let status = if queued && mention.status == Status::Pending {
        Status::Pending
    } else {
        mention.status
    };
    let body = serde_json::json!({
        "status": status.as_str(),
        "reason": mention.reason.as_deref().map(public_reason),
        "source": mention.source,
        "target": mention.target,
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        publish::json_bytes(&body),
    )
        .into_response()
}
