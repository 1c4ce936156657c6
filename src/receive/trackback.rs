//! Trackback: `POST /trackback/<post-key>` and `POST /trackback?target=`, form fields in the
//! sender's charset, answered with the spec's `<response><error>` XML; the ping's title,
//! excerpt and blog name fill in what the page does not say.

use crate::model::Kind;
use crate::pipeline::{Hint, Rejection};
use crate::server::{AppState, Shared, charset_of, field, form_fields};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;

pub(crate) fn trackback_xml(error: Option<&str>) -> Vec<u8> {
    use quick_xml::events::{BytesDecl, BytesText, Event};
    let mut w = quick_xml::Writer::new_with_indent(std::io::Cursor::new(Vec::new()), b' ', 0);
    let written: std::io::Result<()> = (|| {
        w.write_event(Event::Decl(BytesDecl::new("1.0", Some("utf-8"), None)))?;
        w.create_element("response").write_inner_content(|w| {
            w.create_element("error")
                .write_text_content(BytesText::new(if error.is_some() { "1" } else { "0" }))?;
            if let Some(message) = error {
                w.create_element("message")
                    .write_text_content(BytesText::new(message))?;
            }
            Ok(())
        })?;
        Ok(())
    })();
    written.expect("memory write");
    w.into_inner().into_inner()
}

pub(crate) fn trackback_response(status: StatusCode, error: Option<&str>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        trackback_xml(error),
    )
        .into_response()
}

pub(crate) async fn trackback_by_key(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match state.ctx.store.post_by_key(&key) {
        Ok(Some(post)) => trackback(&state, peer, &post.url, &headers, &body).await,
        Ok(None) => trackback_response(StatusCode::NOT_FOUND, Some("No such entry")),
        Err(e) => trackback_response(
            StatusCode::SERVICE_UNAVAILABLE,
            Some(&format!("store error: {e}")),
        ),
    }
}

pub(crate) async fn trackback_by_query(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fields = form_fields(query.as_deref().unwrap_or("").as_bytes(), None);
    match field(&fields, "target") {
        Some(target) => trackback(&state, peer, target, &headers, &body).await,
        None => trackback_response(StatusCode::BAD_REQUEST, Some("missing ?target=<post URL>")),
    }
}

pub(crate) async fn trackback(
    state: &AppState,
    peer: SocketAddr,
    target: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let charset = charset_of(headers);
    let mut fields = form_fields(body, charset.as_deref());
    if charset.is_none()
        && let Some(cs) = field(&fields, "charset").map(str::to_string)
    {
        fields = form_fields(body, Some(&cs));
    }
    let Some(url) = field(&fields, "url") else {
        return trackback_response(StatusCode::OK, Some("the url field is required"));
    };
    if let Some(limited) = state.rate_limited(peer.ip(), Some(url)) {
        return limited;
    }
    let limit =
        |s: Option<&str>, n: usize| s.map(|v| crate::text::truncate(&crate::text::collapse(v), n));
    let hint = Hint {
        title: limit(field(&fields, "title"), 250),
        excerpt: limit(field(&fields, "excerpt"), 300),
        blog_name: limit(field(&fields, "blog_name"), 250),
        ..Default::default()
    };
    match state
        .ctx
        .submit(url, target, Kind::Trackback, Some(&hint))
        .await
    {
        // A pair a moderator rejected stays rejected: say so, as pingback does (0x31).
        Ok((enqueued, _))
            if matches!(enqueued.moderation.as_deref(), Some("rejected" | "blocked")) =>
        {
            trackback_response(StatusCode::OK, Some("access denied"))
        }
        Ok(_) => trackback_response(StatusCode::OK, None),
        Err(Rejection::Internal(e)) => {
            tracing::error!(error = %e, "trackback not stored");
            trackback_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                Some("could not store the ping; try again later"),
            )
        }
        Err(rejection @ Rejection::TargetUnavailable) => {
            trackback_response(StatusCode::SERVICE_UNAVAILABLE, Some(&rejection.reason()))
        }
        Err(rejection) => trackback_response(StatusCode::OK, Some(&rejection.reason())),
    }
}
