//! The map of every URL `backfeed serve` answers, and the layers all of them pass through.

use crate::pipeline::Context;
use crate::publish::Format;
use crate::publish::http::{api_count, api_mentions, embed_js, feed, mentions_html};
use crate::receive::{pingback, trackback, webmention};
use crate::server::{AppState, MAX_BODY_BYTES, count_requests, healthz, metrics};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use std::sync::Arc;

/// Builds the router over a running context.
pub fn router(ctx: Arc<Context>) -> Router {
    let separate_metrics = ctx.cfg.server.metrics_listen.is_some();
    let state = AppState::new(ctx);
    let admin_on = state.admin.is_some();
    // The read-only publishing routes may be read from any origin (a page's script, a build).
    let published = Router::new()
        .route("/mentions.html", get(mentions_html))
        .route("/embed.js", get(embed_js))
        .route("/mentions.css", get(crate::publish::http::mentions_css))
        .route(
            "/mentions.atom",
            get(|s, q, u, h| feed(s, q, u, h, Format::Atom)),
        )
        .route(
            "/mentions.rss",
            get(|s, q, u, h| feed(s, q, u, h, Format::Rss)),
        )
        .route(
            "/mentions.json",
            get(|s, q, u, h| feed(s, q, u, h, Format::JsonFeed)),
        )
        .route(
            "/mentions.jf2",
            get(|s, q, u, h| feed(s, q, u, h, Format::Jf2)),
        )
        .route("/api/mentions.jf2", get(api_mentions))
        .route("/api/count.json", get(api_count))
        .route("/api/deleted.json", get(crate::publish::http::api_deleted))
        .layer(
            tower_http::cors::CorsLayer::new()
                .allow_origin(tower_http::cors::Any)
                .allow_methods([axum::http::Method::GET]),
        );
    let router = Router::new()
        .route("/webmention", post(webmention::webmention))
        .route("/webmention/{token}", get(webmention::webmention_status))
        .route("/xmlrpc", post(pingback::xmlrpc_endpoint))
        .route("/trackback", post(trackback::trackback_by_query))
        .route("/trackback/{key}", post(trackback::trackback_by_key))
        .merge(published)
        .route("/healthz", get(healthz));
    // `/metrics` here, unless `[server] metrics_listen` gives it an address of its own.
    let router = if separate_metrics {
        router
    } else {
        router.route("/metrics", get(metrics))
    };
    // `/admin/` only when `[admin] password_env` names a set variable: off, it is a 404.
    let router = if admin_on {
        router.merge(crate::admin::routes())
    } else {
        router
    };
    router
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::server::whole_body_in_time,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// `/metrics` alone, for `[server] metrics_listen`.
pub fn metrics_router(ctx: Arc<Context>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(AppState::new(ctx))
}
