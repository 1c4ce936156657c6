//! Telling people: a webhook POST for every mention published or deleted (a build hook that
//! rebuilds a static site, webmention.io's webhook for the scripts written for it), and mail
//! like WordPress sent ("New pingback on your post"), one a mention or one digest a run.
//!
//! Delivery is durable: the store queues each event in the transaction that publishes or
//! deletes the mention; here due deliveries are leased (so no two loops make one twice),
//! made, and marked delivered — or failed, with their error, and tried again with backoff
//! (5xx, timeouts, refused mail) until they go through: at least once, never again after a
//! success. Webhook URLs are the operator's, but still go through the fetcher's caps and
//! timeouts; secrets come from the environment and never reach the store or the log.

mod mail;

use crate::config::{Channel, WebhookConfig};
use crate::fetch::{Request, Trust};
use crate::model::now_rfc3339;
use crate::pipeline::{Context, LeaseRenewer, new_lease_owner, retry_delay_secs};
use crate::store::{Decision, Delivery};
use hmac::{KeyInit, Mac};
use serde_json::json;

pub use mail::send_digest;

pub use crate::config::MAIL;

/// `text` (an error) with the webhook's URL, and its path and query, replaced by its label.
fn redact(text: &str, hook: &WebhookConfig, label: &str) -> String {
    let mut out = text.replace(hook.url.as_str(), label);
    let path_and_query = &hook.url[url::Position::BeforePath..];
    if path_and_query.len() > 1 {
        out = out.replace(path_and_query, "/…");
    }
    out
}

/// What one round of deliveries did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Delivered {
    pub delivered: usize,
    pub failed: usize,
}

/// Makes every delivery that is due (mail only when it is not sent as a digest).
pub async fn deliver_due(ctx: &Context) -> Delivered {
    let mut done = Delivered::default();
    if let Err(e) = ctx.store.fan_out() {
        tracing::error!(error = %e, "notifications not fanned out");
        return done;
    }
    let digest = ctx
        .cfg
        .notify
        .email
        .as_ref()
        .is_some_and(|e| !e.digest.trim().is_empty());
    let sites = ctx.sites();
    let channels: Vec<String> = ctx
        .cfg
        .notify
        .channels(&sites)
        .into_iter()
        .map(|(channel, _)| channel)
        .filter(|c| !(digest && c == MAIL))
        .collect();
    let owner = new_lease_owner();
    // A batch's later deliveries wait for the earlier ones: their leases are renewed while
    // this loop works, so a slow receiver never lets them expire into another loop's hands.
    let _renewer = LeaseRenewer::start(ctx, &owner);
    loop {
        let due = match ctx
            .store
            .lease_deliveries(&channels, 32, ctx.cfg.store.lease_secs, &owner)
        {
            Ok(due) if !due.is_empty() => due,
            Ok(_) => return done,
            Err(e) => {
                tracing::error!(error = %e, "cannot lease deliveries");
                return done;
            }
        };
        for d in due {
            let result = match ctx.cfg.notify.resolve(&d.channel, &sites) {
                Some(Channel::Mail(to)) => mail::one(ctx, &to, &d).await,
                Some(Channel::Webhook(hook)) => webhook(ctx, hook, &d).await.map_err(|e| {
                    redact(&e, hook, &ctx.cfg.notify.channel_label(&d.channel, &sites))
                }),
                None => Err("no such channel configured any more".into()),
            };
            record(ctx, &d, result, &mut done);
        }
    }
}

/// The notifier inside `serve`: delivers what is due whenever a job finishes, and every few
/// seconds (retries, and what other processes — `approve`, `crawl` — published).
pub async fn run(ctx: std::sync::Arc<Context>, shutdown: crate::shutdown::Shutdown) {
    loop {
        // Sites read again (SIGHUP, `[sites] dir`) may bring channels or take the last away:
        // the configuration of now says whether there is anyone to tell.
        if ctx.cfg.notify.any(&ctx.sites()) {
            deliver_due(&ctx).await;
        }
        tokio::select! {
            _ = ctx.job_finished.notified() => {}
            _ = tokio::time::sleep(std::time::Duration::from_secs(5)) => {}
            _ = shutdown.wait() => return,
        }
    }
}

/// Marks a delivery delivered, or failed with its next try, with its decision-log line.
fn record(ctx: &Context, d: &Delivery, result: Result<String, String>, done: &mut Delivered) {
    let label = ctx.cfg.notify.channel_label(&d.channel, &ctx.sites());
    let decision = |outcome: &str, reason: &str| Decision {
        at: now_rfc3339(),
        source: d.mention.source.clone(),
        target: label.clone(),
        kind: "notify".into(),
        outcome: outcome.into(),
        reason: reason.into(),
    };
    let written = match &result {
        Ok(answer) => {
            done.delivered += 1;
            tracing::info!(channel = %label, mention = d.mention.id, event = %d.event, "notification delivered");
            ctx.store.delivered(
                d,
                &decision("delivered", &format!("{} notice: {answer}", d.event)),
            )
        }
        Err(error) => {
            done.failed += 1;
            let retry = retry_delay_secs(d.attempts);
            tracing::warn!(channel = %label, mention = d.mention.id, error = %error, retry_in_secs = retry, "notification not delivered");
            ctx.store
                .delivery_failed(d, error, retry, &decision("retrying", error))
        }
    };
    match written {
        Err(e) if e.is_stale_lease() => {
            tracing::warn!(error = %e, delivery = d.id, "delivery outcome refused: another loop took this delivery over");
        }
        Err(e) => {
            tracing::error!(error = %e, delivery = d.id, "delivery state not kept; it will be made again");
        }
        Ok(()) => {}
    }
}

/// The body a webhook receives: webmention.io's (`secret`, `source`, `target`, `post` — the
/// JF2 entry as `/api/mentions.jf2` shows it — and `deleted: true` for a deletion), or the
/// entry alone.
pub fn webhook_body(hook: &WebhookConfig, d: &Delivery, secret: Option<&str>) -> Vec<u8> {
    let mut entry = crate::publish::jf2::jf2_entry(&d.mention);
    // `deleted: true` for a deletion, `held: true` for a mention waiting for approval.
    let flag = match d.event.as_str() {
        "deleted" => Some("deleted"),
        "held" => Some("held"),
        _ => None,
    };
    let body = if hook.format == "jf2" {
        if let Some(flag) = flag {
            entry[flag] = json!(true);
        }
        entry
    } else {
        let mut body = json!({
            "secret": secret,
            "source": d.mention.source,
            "target": d.mention.target,
            "post": entry,
        });
        if let Some(flag) = flag {
            body[flag] = json!(true);
        }
        body
    };
    serde_json::to_vec(&body).expect("JSON values serialize")
}

/// `sha256=<hex HMAC-SHA256 of body>`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn webhook(ctx: &Context, hook: &WebhookConfig, d: &Delivery) -> Result<String, String> {
    let secret = hook.secret_env.as_ref().and_then(|v| std::env::var(v).ok());
    let body = webhook_body(hook, d, secret.as_deref());
    let mut req = Request::get(hook.url.clone(), Trust::Configured);
    req.accept = "*/*";
    // The same on every retry of this event: a receiver can drop a repeat.
    req.headers.push(("x-backfeed-delivery", d.id.to_string()));
    if let Some(secret) = &secret {
        req.headers
            .push(("x-backfeed-signature", signature(secret, &body)));
    }
    req.body = Some((
        "application/json",
        String::from_utf8(body).expect("JSON is UTF-8"),
    ));
    let answer = ctx.fetcher.fetch(&req).await.map_err(|e| e.to_string())?;
    if (200..300).contains(&answer.status) {
        Ok(format!("the webhook answered {}", answer.status))
    } else {
        Err(format!("the webhook answered {}", answer.status))
    }
}
