//! Runs `crawl` and `reverify` inside `serve` on their cron schedules (expressions with seconds).
//!
//! Each schedule is one loop that awaits its own run before computing the next tick, so a run
//! never overlaps itself; ticks that passed while it ran are skipped and logged. Last start, end
//! and summary are kept in the store, so `backfeed status` (another process) can show them.

use crate::pipeline::Context;
use crate::shutdown::Shutdown;
use std::str::FromStr;
use std::sync::Arc;

/// The two schedules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Job {
    Crawl,
    Reverify,
}

impl Job {
    pub fn name(self) -> &'static str {
        match self {
            Job::Crawl => "crawl",
            Job::Reverify => "reverify",
        }
    }

    fn expression(self, ctx: &Context) -> &str {
        match self {
            Job::Crawl => &ctx.cfg.schedule.crawl,
            Job::Reverify => &ctx.cfg.schedule.reverify,
        }
    }
}

/// The next tick of a schedule after now, RFC 3339.
pub fn next_run(expression: &str) -> Option<String> {
    let schedule = cron::Schedule::from_str(expression).ok()?;
    schedule
        .upcoming(chrono::Utc)
        .next()
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// Runs one job now and records it.
pub async fn run_once(ctx: &Arc<Context>, job: Job) -> crate::crawl::Summary {
    let started = crate::model::now_rfc3339();
    let _ = ctx
        .store
        .kv_put(&format!("schedule:{}:last_start", job.name()), &started);
    let summary = match job {
        Job::Crawl => crate::crawl::crawl(ctx, &mut |_| {}).await,
        Job::Reverify => crate::crawl::reverify(ctx, 3600, &mut |_| {}).await,
    };
    let _ = ctx.store.kv_put(
        &format!("schedule:{}:last_end", job.name()),
        &crate::model::now_rfc3339(),
    );
    let _ = ctx.store.kv_put(
        &format!("schedule:{}:last_summary", job.name()),
        &summary.line(),
    );
    tracing::info!(schedule = job.name(), summary = %summary.line(), "scheduled run finished");
    summary
}

/// Drives one schedule until shutdown.
pub async fn run(ctx: Arc<Context>, job: Job, shutdown: Shutdown) {
    let schedule = match cron::Schedule::from_str(job.expression(&ctx)) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(schedule = job.name(), error = %e, "bad cron expression; schedule disabled");
            return;
        }
    };
    loop {
        let Some(next) = schedule.upcoming(chrono::Utc).next() else {
            return;
        };
        let wait = (next - chrono::Utc::now()).to_std().unwrap_or_default();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.wait() => return,
        }
        let finished_tick = tokio::select! {
            _ = run_once(&ctx, job) => chrono::Utc::now(),
            _ = shutdown.wait() => return,
        };
        let missed = schedule
            .after(&next)
            .take_while(|t| *t < finished_tick)
            .count();
        if missed > 0 {
            tracing::warn!(
                schedule = job.name(),
                missed,
                "run outlasted its interval; missed ticks skipped"
            );
        }
    }
}
