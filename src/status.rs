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
        Ok(StatusReport {
            counts: ctx.store.counts()?,
            schedules,
            source_problems,
            notifications: ctx
                .store
                .pending_deliveries()?
                .into_iter()
                .map(|mut p| {
                    p.channel = crate::notify::channel_label(&ctx.cfg, &p.channel);
                    p
                })
                .collect(),
            failing: ctx.store.failing_urls(1)?,
        })
    }
}
