//! What `backfeed status` and the operator's status page show, gathered once: counts, the
//! schedules' last and next runs, social sources that are failing, notifications waiting, and
//! watched URLs that keep failing. The CLI prints it as text or JSON; `/admin/status` as HTML.

use crate::pipeline::Context;
use crate::store::{Counts, FailingUrl, PendingDeliveries};

/// One cron schedule: its expression, its last run and its next.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ScheduleStatus {
    pub name: &'static str,
    pub cron: String,
    pub last_start: Option<String>,
    pub last_end: Option<String>,
    pub last_summary: Option<String>,
    /// The last summary's counts (`found`, `verified`, `errors` …), for a program to read.
    pub last_counts: Option<std::collections::BTreeMap<String, u64>>,
    pub next: Option<String>,
}

/// A social source whose last poll failed.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SourceProblem {
    pub name: &'static str,
    pub error: String,
}

/// Everything the status views show.
#[derive(Clone, Debug)]
pub struct StatusReport {
    pub counts: Counts,
    pub schedules: Vec<ScheduleStatus>,
    pub source_problems: Vec<SourceProblem>,
    pub notifications: Vec<PendingDeliveries>,
    pub failing: Vec<FailingUrl>,
    /// What in the configuration will not work as written (see [`config_warnings`]).
    pub warnings: Vec<String>,
    /// The processes serving the store now (heartbeat within the last 20 s).
    pub instances: Vec<crate::store::Instance>,
    /// Each site's posts and mentions by status (every name rows are filed under, removed
    /// sites included until forgotten).
    pub sites: Vec<crate::store::SiteCounts>,
}

/// The counts of a summary line (`posts 3 · found 2 · errors 0`), by name; other words are
/// left out.
fn summary_counts(line: &str) -> std::collections::BTreeMap<String, u64> {
    line.split(" · ")
        .filter_map(|part| {
            let (name, n) = part.trim().rsplit_once(' ')?;
            Some((name.trim().to_string(), n.parse().ok()?))
        })
        .collect()
}

/// What in the configuration will not work as written: a variable named for a secret that is
/// not set (a webhook then goes unsigned, mail is not sent), and settings for testing only.
/// Said at `serve`'s start and by `status`.
pub fn config_warnings(cfg: &crate::config::Config) -> Vec<String> {
    let unset = |name: &str| std::env::var(name).map_or(true, |v| v.is_empty());
    let mut warnings = Vec::new();
    for hook in &cfg.notify.webhook {
        if let Some(var) = hook.secret_env.as_deref().filter(|v| unset(v)) {
            warnings.push(format!(
                "[[notify.webhook]] {}: secret_env names ${var}, which is not set: its webhooks go unsigned",
                cfg.notify.channel_label(hook.url.as_str(), &cfg.sites)
            ));
        }
    }
    if let Some(email) = &cfg.notify.email
        && unset(&email.smtp_url_env)
    {
        warnings.push(format!(
            "[notify.email] smtp_url_env names ${}, which is not set: no mail can be sent",
            email.smtp_url_env
        ));
    }
    if cfg.fetch.allow_private_addresses {
        warnings.push(
            "[fetch] allow_private_addresses is on: for testing only, never on a public server"
                .into(),
        );
    }
    warnings
}

/// The social sources, by the names their config sections and state rows use.
pub const SOCIAL_SOURCES: [&str; 4] = ["hackernews", "reddit", "bluesky", "mastodon"];

impl StatusReport {
    pub fn gather(ctx: &Context) -> crate::store::StoreResult<StatusReport> {
        let mut schedules = Vec::new();
        for (name, expr) in [
            ("crawl", &ctx.cfg.schedule.crawl),
            ("reverify", &ctx.cfg.schedule.reverify),
        ] {
            let run = ctx.store.schedule_run(name)?;
            schedules.push(ScheduleStatus {
                name,
                cron: expr.clone(),
                last_start: run.last_start,
                last_end: run.last_end,
                last_counts: run.last_summary.as_deref().map(summary_counts),
                last_summary: run.last_summary,
                next: crate::schedule::next_run(expr),
            });
        }
        let mut source_problems = Vec::new();
        for name in SOCIAL_SOURCES {
            if let Some(error) = ctx.store.social_source(name)?.last_error {
                source_problems.push(SourceProblem { name, error });
            }
        }
        let (counts, sites) = ctx.store.counts_with_sites()?;
        Ok(StatusReport {
            counts,
            schedules,
            source_problems,
            warnings: config_warnings(&ctx.cfg),
            notifications: ctx
                .store
                .pending_deliveries()?
                .into_iter()
                .map(|mut p| {
                    p.channel = ctx.cfg.notify.channel_label(&p.channel, &ctx.sites());
                    p
                })
                .collect(),
            failing: ctx.store.failing_urls(1)?,
            instances: ctx.store.live_instances()?,
            sites,
        })
    }
}
