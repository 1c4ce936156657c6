//! The job loop behind `serve`'s worker and every drain: leases due jobs fair between source
//! hosts, runs each as its own task, renews the leases of those in flight, and gives back what
//! it could not finish.
//!
//! A job counts against `[fetch] concurrency` and its host's share while it is checked (fetch
//! and read), not while its outcome waits for the group commit: the concurrency is requests in
//! flight, and a slot held through a commit's wait (tens of milliseconds on a busy
//! PostgreSQL) would leave the network idle. Outcomes waiting to be written are bounded too
//! ([`WRITES_WAITING_PER_SLOT`] per slot), so a store that falls behind slows the leasing.

use super::*;

/// Jobs whose outcomes wait to be written, per `[fetch] concurrency` slot, before the loop
/// leases no more.
const WRITES_WAITING_PER_SLOT: usize = 2;

/// Processes every due job now, `concurrency` at a time, calling `progress` after each, and
/// returns when nothing is due or in flight. Jobs waiting for a later retry are left for later.
pub async fn drain(ctx: &Arc<Context>, mut progress: impl FnMut(&Processed)) -> Vec<Processed> {
    let mut results = Vec::new();
    work(ctx, None, |p| {
        progress(&p);
        results.push(p);
    })
    .await;
    results
}

/// The background worker of `serve`: processes due jobs as they come until `shutdown` fires.
pub async fn run_worker(ctx: Arc<Context>, shutdown: crate::shutdown::Shutdown) {
    work(&ctx, Some(shutdown), |_| {}).await;
}

/// The one job loop behind [`drain`] and [`run_worker`]: each job is its own task (so parsing
/// uses every core), `concurrency` at most being checked at once (and up to
/// [`WRITES_WAITING_PER_SLOT`] times that waiting for their writes), refilled in batches as
/// checks end. With a shutdown
/// signal it runs until the signal, waiting for work; without one it stops when idle. On the
/// way out, jobs still in flight get their fetch deadline to finish; leases of any that could
/// not are given back, so they are due again at once on the next start. Each loop leases under
/// its own owner id and gives back only its own leases: a drain that ends never frees a job
/// another loop is still working on.
async fn work(
    ctx: &Arc<Context>,
    shutdown: Option<crate::shutdown::Shutdown>,
    mut done: impl FnMut(Processed),
) {
    let limit = ctx.cfg.fetch.concurrency.max(1);
    let stopping = || shutdown.as_ref().is_some_and(|s| s.is_triggered());
    // Leasing is a write transaction: refill in batches rather than one slot at a time.
    let refill = (limit / 4).max(1);
    let owner = new_lease_owner();
    let per_host = ctx.cfg.fetch.per_host;
    // Leases are renewed every third of their length while jobs are in flight: a job whose
    // loop stopped renewing (a crash, a stall) is taken over once its lease expires, and a
    // stalled loop's late outcome is refused by its fence (see `store::jobs`).
    let lease_secs = ctx.cfg.store.lease_secs;
    let mut renew = tokio::time::interval(std::time::Duration::from_secs(
        (lease_secs as u64 / 3).max(1),
    ));
    renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut in_flight = tokio::task::JoinSet::new();
    // The source host of each task still being checked, to give its share back when the
    // check is done (the task says so) or the task ends.
    let mut task_hosts: std::collections::HashMap<tokio::task::Id, String> = Default::default();
    let (checked_tx, mut checked_rx) = tokio::sync::mpsc::unbounded_channel::<tokio::task::Id>();
    let most_in_flight = limit.saturating_mul(1 + WRITES_WAITING_PER_SLOT);
    // Jobs in flight per source host, so leasing stays fair between hosts.
    let mut hosts: std::collections::HashMap<String, usize> = Default::default();
    let finished_host = |hosts: &mut std::collections::HashMap<String, usize>, host: &str| {
        if let Some(n) = hosts.get_mut(host) {
            *n -= 1;
            if *n == 0 {
                hosts.remove(host);
            }
        }
    };
    // A lease that came back short (what was due had no room: its hosts' shares were taken)
    // is not asked again at every check that ends — each ask reads windows of the queue, and
    // with few hosts behind many jobs that was most of the store's work — but once `refill`
    // checks have ended since, or none is left, or the loop was woken or idle a second.
    let mut came_back_short = false;
    let mut checks_ended_since = 0usize;
    loop {
        let free = limit
            .saturating_sub(task_hosts.len())
            .min(most_in_flight.saturating_sub(in_flight.len()));
        let room_made = !came_back_short || checks_ended_since >= refill || task_hosts.is_empty();
        if (in_flight.is_empty() || (free >= refill && room_made)) && !stopping() {
            checks_ended_since = 0;
            let leased = ctx
                .group_commit
                .lease_due(
                    free,
                    lease_secs,
                    owner.clone(),
                    crate::store::HostRoom {
                        in_flight: hosts.clone(),
                        per_host,
                        instance: ctx.cfg.server.instance_name.clone(),
                    },
                    ctx.sites().list.len() > 1,
                )
                .await;
            match leased {
                Ok(jobs) => {
                    came_back_short = jobs.len() < free;
                    for job in jobs {
                        let ctx = ctx.clone();
                        let host = job.source_host();
                        *hosts.entry(host.clone()).or_default() += 1;
                        let checked = checked_tx.clone();
                        let task = in_flight.spawn(async move {
                            let id = tokio::task::id();
                            ctx.process_then(&job, move || {
                                let _ = checked.send(id);
                            })
                            .await
                        });
                        task_hosts.insert(task.id(), host);
                    }
                }
                Err(e) => tracing::error!(error = %e, "cannot lease jobs"),
            }
        }
        if stopping() || (shutdown.is_none() && in_flight.is_empty()) {
            break;
        }
        let idle_wait = std::time::Duration::from_secs(1);
        tokio::select! {
            Some(id) = checked_rx.recv() => {
                if let Some(host) = task_hosts.remove(&id) {
                    finished_host(&mut hosts, &host);
                    checks_ended_since += 1;
                }
            }
            finished = in_flight.join_next_with_id(), if !in_flight.is_empty() => {
                // A job's host slot is given back however its task ended: a panic (logged
                // here; its lease expires and the job is tried again) must not keep it.
                let (id, processed) = match finished {
                    Some(Ok((id, processed))) => (id, Some(processed)),
                    Some(Err(e)) => {
                        tracing::error!(error = %e, "a verification task ended without an outcome; its job will be tried again");
                        (e.id(), None)
                    }
                    None => continue,
                };
                if let Some(host) = task_hosts.remove(&id) {
                    finished_host(&mut hosts, &host);
                    checks_ended_since += 1;
                }
                if let Some(processed) = processed {
                    done(processed);
                }
            }
            _ = renew.tick(), if !in_flight.is_empty() => {
                let (owner, secs) = (owner.clone(), lease_secs);
                let renewed = ctx.group_commit.renew_leases(owner, secs).await;
                if let Err(e) = renewed {
                    tracing::error!(error = %e, "cannot renew leases");
                }
            }
            _ = ctx.wake.notified(), if shutdown.is_some() => came_back_short = false,
            _ = tokio::time::sleep(idle_wait), if shutdown.is_some() => came_back_short = false,
            _ = async { if let Some(s) = &shutdown { s.wait().await } }, if shutdown.is_some() => {}
        }
    }
    let grace = std::time::Duration::from_secs(ctx.cfg.fetch.timeout_secs + 5);
    let _ = tokio::time::timeout(grace, async {
        while let Some(finished) = in_flight.join_next().await {
            if let Ok(processed) = finished {
                done(processed);
            }
        }
    })
    .await;
    in_flight.abort_all();
    if let Err(e) = ctx.store.release_leases(&owner) {
        tracing::error!(error = %e, "could not release leases");
    }
}
