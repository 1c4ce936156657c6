//! Mail like WordPress sent: one plain-text mail per published mention ("New pingback on
//! “Hello”") and per mention held for approval ("Please moderate", with a link to the
//! operator's page), or one digest listing both since the last. Through SMTP with
//! lettre, whose URL forms say TLS, STARTTLS or plain; the URL (with its credentials) comes
//! from the environment. Subjects are plain text made tidy (no line breaks can reach a header)
//! and encoded for their characters by lettre.

use super::{Delivered, MAIL, record};
use crate::config::MailTo;
use crate::model::{Kind, Mention, MentionType, match_key};
use crate::pipeline::{Context, LeaseRenewer, new_lease_owner};
use crate::store::Delivery;
use lettre::message::header::ContentType;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// Sends the mail for one delivery: a new mention, or one waiting for approval (with a link
/// to the operator's page); a deletion sends none.
pub(super) async fn one(ctx: &Context, to: &MailTo, d: &Delivery) -> Result<String, String> {
    let post = post_title(ctx, &d.mention);
    let names = site_names(ctx, &d.mention.target);
    let (what, site) = (what(&d.mention), &names.title);
    let (subject, body) = match d.event.as_str() {
        "published" => (
            format!("[{site}] New {what} on “{post}”"),
            describe(ctx, &d.mention, &post),
        ),
        "held" => (
            format!("[{site}] Please moderate: a {what} on “{post}” is waiting for approval"),
            format!(
                "{}\nApprove or reject it: {}admin/ (or `backfeed approve {}` / `backfeed reject {}`)\n",
                describe(ctx, &d.mention, &post),
                ctx.cfg.server.public_url,
                d.mention.id,
                d.mention.id
            ),
        ),
        _ => return Ok("no mail for a deletion".into()),
    };
    send(ctx, to, &subject, &body).await
}

/// The names of the site `target` is under (of the first site, when under none).
fn site_names(ctx: &Context, target: &str) -> crate::model::SiteNames {
    let sites = ctx.sites();
    ctx.feed_names(sites.for_target(target))
}

/// Sends one mail listing every mention published since the last digest; returns how many it
/// listed (no mail when there are none).
pub async fn send_digest(ctx: &Context) -> Result<Delivered, String> {
    ctx.store.fan_out().map_err(|e| e.to_string())?;
    let owner = new_lease_owner();
    let _renewer = LeaseRenewer::start(ctx, &owner);
    let due = ctx
        .store
        .lease_deliveries(
            &[MAIL.to_string()],
            10_000,
            ctx.cfg.store.lease_secs,
            &owner,
        )
        .map_err(|e| e.to_string())?;
    // New mentions and those waiting for approval, each said as such.
    let published: Vec<&Delivery> = due
        .iter()
        .filter(|d| matches!(d.event.as_str(), "published" | "held"))
        .collect();
    let result = if published.is_empty() {
        Ok("nothing new".to_string())
    } else {
        let subject = format!(
            "[{}] {} new mention{}",
            ctx.feed_names(None).title,
            published.len(),
            if published.len() == 1 { "" } else { "s" }
        );
        let body = published
            .iter()
            .map(|d| {
                let text = describe(ctx, &d.mention, &post_title(ctx, &d.mention));
                if d.event == "held" {
                    format!(
                        "WAITING FOR APPROVAL: {}admin/\n{text}",
                        ctx.cfg.server.public_url
                    )
                } else {
                    text
                }
            })
            .collect::<Vec<_>>()
            .join("\n----\n\n");
        match ctx.cfg.notify.resolve(MAIL, &ctx.sites()) {
            Some(crate::config::Channel::Mail(to)) => send(ctx, &to, &subject, &body).await,
            _ => Err("no [notify.email] configured".into()),
        }
    };
    let mut done = Delivered::default();
    for d in &due {
        record(ctx, d, result.clone(), &mut done);
    }
    Ok(done)
}

fn what(m: &Mention) -> &'static str {
    match (m.kind, m.mention_type) {
        (Kind::Pingback, _) => "pingback",
        (Kind::Trackback, _) => "trackback",
        (_, MentionType::Reply) => "reply",
        (_, MentionType::Like) => "like",
        (_, MentionType::Repost) => "repost",
        (_, MentionType::Bookmark) => "bookmark",
        _ => "mention",
    }
}

fn post_title(ctx: &Context, m: &Mention) -> String {
    match_key(&m.target)
        .and_then(|k| ctx.store.post_by_match_key(&k).ok().flatten())
        .and_then(|p| p.title)
        .unwrap_or_else(|| m.target.clone())
}

/// The plain-text account of one mention: who, on which post, what they said, where.
fn describe(ctx: &Context, m: &Mention, post: &str) -> String {
    let who = m.who();
    let mut text = format!(
        "New {} on your post “{post}”\n{}\n\nFrom: {who}\n",
        what(m),
        m.target
    );
    if let Some(title) = &m.title {
        text.push_str(&format!("Title: {title}\n"));
    }
    text.push_str(&format!("Link: {}\n", m.source));
    if let Some(excerpt) = &m.excerpt {
        text.push_str(&format!("\n{excerpt}\n"));
    }
    text.push_str(&format!(
        "\nAll mentions: {}mentions.atom — or `backfeed mentions` on the server.\n",
        ctx.cfg.server.public_url
    ));
    text
}

async fn send(ctx: &Context, email: &MailTo, subject: &str, body: &str) -> Result<String, String> {
    let url = std::env::var(&email.smtp_url_env)
        .map_err(|_| format!("set ${} to the SMTP server's URL", email.smtp_url_env))?;
    // A Message-ID of our own domain (lettre makes it unique), and MIME-Version: mail that
    // spam filters and threading clients expect.
    let domain = email
        .from
        .rsplit_once('@')
        .map(|(_, d)| d.trim_end_matches('>').to_string())
        .unwrap_or_else(|| "backfeed.invalid".into());
    let mut message = Message::builder()
        .from(email.from.parse().map_err(|e| format!("from: {e}"))?)
        // No line break from a hostile title can reach a header: text is tidied first.
        .subject(crate::text::collapse(subject))
        .message_id(Some(format!(
            "<{:016x}.{:016x}@{domain}>",
            getrandom::u64().unwrap_or_default(),
            getrandom::u64().unwrap_or_default()
        )))
        .header(lettre::message::header::MIME_VERSION_1_0)
        .header(ContentType::TEXT_PLAIN);
    for to in &email.to {
        message = message.to(to.parse().map_err(|e| format!("to: {e}"))?);
    }
    let message = message
        .body(body.to_string())
        .map_err(|e| format!("cannot build the mail: {e}"))?;
    let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&url)
        .map_err(|e| format!("${}: {e}", email.smtp_url_env))?
        .timeout(Some(std::time::Duration::from_secs(
            ctx.cfg.fetch.timeout_secs,
        )))
        .build();
    let answer = transport
        .send(message)
        .await
        .map_err(|e| format!("the mail server refused: {e}"))?;
    Ok(format!("mail accepted ({})", answer.code()))
}
