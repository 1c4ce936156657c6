//! Runs `crawl` and `reverify` inside `serve` on their cron schedules (expressions with seconds).
//!
//! Each schedule is one loop that awaits its own run before computing the next tick, so a run
//! never overlaps itself; ticks that passed while it ran are skipped and logged. Last start, end
//! and summary are kept in the store, so `backfeed status` (another process) can show them.

use crate::model::OrLog;
use crate::pipeline::Context;
use crate::shutdown::Shutdown;
use std::str::FromStr;
use std::sync::Arc;

/// The two schedules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Job {
    Crawl,
    Reverify,
    /// The mail digest of `[notify.email] digest`.
    Digest,
}

impl Job {
    pub fn name(self) -> &'static str {
        match self {
            Job::Crawl => "crawl",
            Job::Reverify => "reverify",
            Job::Digest => "digest",
        }
    }

    fn expression(self, ctx: &Context) -> &str {
        match self {
            Job::Crawl => &ctx.cfg.schedule.crawl,
            Job::Reverify => &ctx.cfg.schedule.reverify,
            Job::Digest => ctx
                .cfg
                .notify
                .email
                .as_ref()
                .map_or("", |e| e.digest.as_str()),
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
pub async fn run_once(ctx: &Arc<Context>, job: Job) -> crate::sources::Summary {
    run_once_with(ctx, job, &mut |_| {}).await
}

/// [`run_once`], reporting each processed candidate to `progress` (the CLI's progress bar).
pub async fn run_once_with(
    ctx: &Arc<Context>,
    job: Job,
    progress: &mut (dyn FnMut(&crate::pipeline::Processed) + Send),
) -> crate::sources::Summary {
    let started = crate::model::now_rfc3339();
    ctx.store
        .schedule_started(job.name(), &started)
        .or_log("schedule state not kept");
    let summary = match job {
        Job::Crawl => crate::sources::crawl(ctx, progress).await,
        Job::Reverify => crate::sources::reverify(ctx, 3600, progress).await,
        Job::Digest => unreachable!("the digest runs without a crawl summary"),
    };
    ctx.store
        .schedule_finished(job.name(), &crate::model::now_rfc3339(), &summary.line())
        .or_log("schedule state not kept");
    // The summary's numbers as numbers (JSON logs keep them so), and the line for people.
    tracing::info!(
        schedule = job.name(),
        found = summary.found,
        verified = summary.verified,
        rejected = summary.rejected,
        errors = summary.errors,
        summary = %summary.line(),
        "scheduled run finished"
    );
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
    drive(&schedule, job.name(), &shutdown, chrono::Utc::now, |due| {
        let ctx = ctx.clone();
        async move {
            let due_at = due.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            if !claimed(&ctx, job, due_at).await {
                return;
            }
            supervised(&ctx, job.name(), async {
                if job == Job::Digest {
                    if let Err(e) = crate::notify::send_digest(&ctx).await {
                        tracing::error!(error = %e, "digest not sent");
                    }
                } else {
                    if job == Job::Crawl {
                        // A site file added or removed since is crawled (or no longer) from
                        // this run on; the files are read off the async threads.
                        let context = ctx.clone();
                        let _ = tokio::task::spawn_blocking(move || context.reload_sites_logged())
                            .await;
                    }
                    run_once(&ctx, job).await;
                }
            })
            .await
        }
    })
    .await;
}

/// The run `serve` makes as it starts (a crawl: the posts are learned now, not at the first
/// tick). Processes of a fleet (PostgreSQL) starting in the same minute make it once; a lone
/// `serve` on SQLite always makes it.
pub async fn run_at_start(ctx: &Arc<Context>, job: Job) {
    let minute = chrono::Utc::now().format("%Y-%m-%dT%H:%MZ");
    let alone = ctx.store.engine() == crate::store::db::Engine::Sqlite;
    if alone || claimed(ctx, job, format!("start {minute}")).await {
        run_once(ctx, job).await;
    }
}

/// Whether this process runs `job`'s tick due at `due_at`: every process with the schedule
/// role wakes at the tick, and the store lets exactly one of them claim it. A store that
/// cannot answer runs nothing (the next tick tries again).
async fn claimed(ctx: &Arc<Context>, job: Job, due_at: String) -> bool {
    let store_ctx = ctx.clone();
    let at = due_at.clone();
    let claim = tokio::task::spawn_blocking(move || {
        store_ctx
            .store
            .claim_schedule_run(job.name(), &at, &store_ctx.cfg.server.instance_name)
    })
    .await;
    match claim {
        Ok(Ok(Ok(()))) => true,
        Ok(Ok(Err(holder))) => {
            tracing::info!(schedule = job.name(), due = %due_at, %holder, "tick run by another process");
            false
        }
        Ok(Err(e)) => {
            tracing::error!(schedule = job.name(), due = %due_at, error = %e, "tick not claimed: the store did not answer; skipped");
            false
        }
        Err(e) => {
            tracing::error!(schedule = job.name(), error = %e, "tick not claimed");
            false
        }
    }
}

/// Runs one scheduled run and outlives its panic: the panic is logged, counted in `/metrics`
/// (`backfeed_task_panics{task}`) and kept as the schedule's last summary, so `status` shows
/// it; the schedule's next run still happens. A bug hit by one input must not stop crawling
/// for good while `/healthz` says all is well.
async fn supervised(ctx: &Context, task: &str, run: impl std::future::Future<Output = ()>) {
    use futures_util::FutureExt;
    let Err(panic) = std::panic::AssertUnwindSafe(run).catch_unwind().await else {
        return;
    };
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into());
    tracing::error!(task, panic = %message, "scheduled run panicked; the next run still happens");
    ctx.metrics.count_panic(task);
    ctx.store
        .schedule_finished(
            task,
            &crate::model::now_rfc3339(),
            &format!("panicked: {message}"),
        )
        .or_log("schedule state not kept");
}

/// What a schedule did, for tests and the log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ticks {
    pub runs: usize,
    pub skipped: usize,
}

/// The schedule loop: sleep until the next tick, run (given the tick's due time), and skip
/// (and log) the ticks that passed while running, so a run never overlaps itself. `now` is the
/// wall clock; tests pass a clock driven by tokio's paused time, so hours of schedule pass in
/// milliseconds without sleeps.
pub async fn drive<R, F>(
    schedule: &cron::Schedule,
    name: &str,
    shutdown: &Shutdown,
    now: impl Fn() -> chrono::DateTime<chrono::Utc>,
    mut run: impl FnMut(chrono::DateTime<chrono::Utc>) -> F,
) -> Ticks
where
    F: std::future::Future<Output = R>,
{
    let mut ticks = Ticks::default();
    loop {
        let Some(next) = schedule.after(&now()).next() else {
            return ticks;
        };
        let wait = (next - now()).to_std().unwrap_or_default();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.wait() => return ticks,
        }
        tokio::select! {
            _ = run(next) => {}
            _ = shutdown.wait() => return ticks,
        }
        ticks.runs += 1;
        let finished = now();
        let missed = schedule.after(&next).take_while(|t| *t <= finished).count();
        if missed > 0 {
            ticks.skipped += missed;
            tracing::warn!(
                schedule = name,
                missed,
                "run outlasted its interval; missed ticks skipped"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Wall time that moves with tokio's (paused) clock.
    fn virtual_clock() -> impl Fn() -> chrono::DateTime<chrono::Utc> {
        let wall = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:30Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let start = tokio::time::Instant::now();
        move || wall + chrono::Duration::from_std(start.elapsed()).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn runs_on_each_tick_and_never_overlaps_itself() {
        let schedule = cron::Schedule::from_str("0 * * * * *").unwrap(); // every minute
        let shutdown = Shutdown::new();
        let (running, max_running, runs) = (
            AtomicUsize::new(0),
            AtomicUsize::new(0),
            AtomicUsize::new(0),
        );
        let stopper = shutdown.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_secs(10 * 60 + 5)).await;
            stopper.trigger();
        });
        // Each run takes 90 s: longer than the interval, so every other tick is skipped.
        let ticks = drive(&schedule, "test", &shutdown, virtual_clock(), |_| async {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            max_running.fetch_max(now, Ordering::SeqCst);
            runs.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(std::time::Duration::from_secs(90)).await;
            running.fetch_sub(1, Ordering::SeqCst);
        })
        .await;
        assert_eq!(
            max_running.load(Ordering::SeqCst),
            1,
            "a run never overlaps itself"
        );
        // Starting at 0:30, ticks at 1:00, 3:00, 5:00, 7:00 and 9:00 start runs (each ends at
        // x:30 of the next minute); the ticks at 2:00, 4:00, 6:00, 8:00 and 10:00 pass while a
        // run is going and are skipped. Shutdown comes at 10:35, before the 11:00 tick.
        assert_eq!(
            ticks,
            Ticks {
                runs: 5,
                skipped: 5
            }
        );
        assert_eq!(runs.load(Ordering::SeqCst), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn a_quick_job_runs_on_every_tick() {
        let schedule = cron::Schedule::from_str("0 */30 * * * *").unwrap(); // the default crawl
        let shutdown = Shutdown::new();
        let stopper = shutdown.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_secs(24 * 3600)).await;
            stopper.trigger();
        });
        let ticks = drive(&schedule, "test", &shutdown, virtual_clock(), |_| async {}).await;
        assert_eq!(
            ticks,
            Ticks {
                runs: 48,
                skipped: 0
            },
            "a day of half-hourly crawls"
        );
    }

    #[tokio::test]
    async fn a_run_that_panics_is_logged_counted_kept_and_the_schedule_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "[site]\nbase_url = \"https://blog.example/\"\n[store]\npath = \"{}\"\n",
            dir.path().join("s.db").display()
        );
        let cfg = crate::config::Config::parse(&text, &dir.path().join("b.toml")).unwrap();
        let ctx = Context::new(cfg).unwrap();
        let panics = AtomicUsize::new(0);
        for _ in 0..2 {
            supervised(&ctx, "crawl", async {
                panics.fetch_add(1, Ordering::SeqCst);
                panic!("an input nobody thought of");
            })
            .await;
        }
        assert_eq!(panics.load(Ordering::SeqCst), 2, "the second run still ran");
        let metrics = ctx.metrics.render(
            &ctx.store,
            &ctx.cfg.notify,
            &ctx.sites(),
            ctx.fetcher.error_count(),
        );
        assert!(
            metrics.contains("backfeed_task_panics_total{task=\"crawl\"} 2"),
            "{metrics}"
        );
        let run = ctx.store.schedule_run("crawl").unwrap();
        assert_eq!(
            run.last_summary.as_deref(),
            Some("panicked: an input nobody thought of")
        );
    }
}
