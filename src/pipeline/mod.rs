//! lease → fetch → verify → moderate → store → ack: the spine every producer shares.
//!
//! Producers call [`Context::submit`], which validates a candidate synchronously (so receivers
//! can answer 400 or a fault at once) and commits it to the durable queue. The worker
//! ([`run_worker`]) and the synchronous paths (`pingback.ping`, `backfeed submit`, `crawl`) all
//! end in [`Context::process`], which turns one job into an [`Outcome`] and applies it: the
//! outcome, not the producer, decides what happens to the store, so a webmention and a crawled
//! feed item that say the same thing are treated the same.
//!
//! Rules kept here: a transient failure never deletes (it retries with backoff); only a 410, a
//! second 404 in a row, or a page fetched fine without the link deletes; a re-sent pair keeps its
//! moderation state (the store enforces that part).
//!
//! The folder by role: this file holds the shared [`Context`] and the retry policy;
//! [`intake`] what a producer hands in (hints, social records) and the checks a candidate
//! passes before it is queued (target lookup, refusals); [`check`] one job's fetch, verdict and
//! write; [`worker`] the loop that leases due jobs, fair between hosts, and renews their leases;
//! [`fleet_slots`] the fetcher's politeness kept with the other processes of a fleet.

mod check;
mod fleet_slots;
mod intake;
mod worker;

pub use check::verify_body;
pub use intake::{Hint, RecordEvidence, Rejection};
pub use worker::{drain, run_worker};

use crate::config::{Config, SiteConfig, Sites};
use crate::fetch::{FetchError, Fetcher, Request, Trust};
use crate::model::OrLog;
use crate::model::{
    Extracted, Kind, Outcome, Status, host_in_domain, host_of, match_key, now_rfc3339,
};
use crate::store::{Applied, Candidate, Decision, Enqueued, GroupCommit, Job, PostRef, Store};
use crate::verify;
use serde::{Deserialize, Serialize};

use std::sync::{Arc, Mutex};
use tokio::sync::Notify;
use url::Url;

/// Tries before a never-verified candidate that keeps failing transiently is given up.
pub const MAX_ATTEMPTS: i64 = 6;

/// Everything a running backfeed shares: config, store, fetcher, the worker's wake-up bell.
pub struct Context {
    /// The configuration read at start. Its sites may have changed since (SIGHUP, `[sites]
    /// dir`): [`Context::sites`] has the current ones.
    pub cfg: Config,
    sites: std::sync::RwLock<Arc<Sites>>,
    pub store: Arc<Store>,
    /// Receivers' enqueues, committed in groups.
    pub group_commit: GroupCommit,
    pub fetcher: Fetcher,
    pub wake: Notify,
    /// Rung after every processed job, for those waiting on one (a pingback the worker holds).
    pub job_finished: Notify,
    pub metrics: crate::metrics::Metrics,
    /// Session tokens of social APIs, kept in memory only: secrets never reach the store.
    pub credentials: Mutex<std::collections::HashMap<String, String>>,
    /// Owner of the leases taken for synchronous checks (pingback, `submit`).
    pub lease_owner: String,
    /// Where pages are parsed: one thread per core, fed from a queue (see `verify::pool`).
    /// Parsing is CPU work, so more at once would not be faster, only hold more trees in
    /// memory (each bounded by the parser's budget).
    pub parse_pool: verify::pool::ParsePool,
}

/// The result of processing one job.
#[derive(Clone, Debug)]
pub struct Processed {
    pub outcome: Outcome,
    /// The mention's status afterwards; `None` while it waits for a retry.
    pub status: Option<Status>,
}
impl Context {
    pub fn new(cfg: Config) -> Result<Context, crate::store::StoreError> {
        let store = Arc::new(Store::open_at(&cfg.store.location)?);
        store.set_site_routes(cfg.sites.routes.clone())?;
        store.set_notify_channels(&cfg.notify.channels(&cfg.sites))?;
        let group_commit = GroupCommit::start(store.clone());
        let mut fetcher = Fetcher::new(&cfg.fetch);
        // Many processes may share a PostgreSQL store: politeness is counted there, for all.
        if store.engine() == crate::store::db::Engine::Postgres {
            fetcher = fetcher.with_shared_limits(fleet_slots::FleetLimits::new(
                store.clone(),
                cfg.server.instance_name.clone(),
            ));
        }
        Ok(Context {
            sites: std::sync::RwLock::new(Arc::new(cfg.sites.clone())),
            cfg,
            store,
            group_commit,
            fetcher,
            wake: Notify::new(),
            job_finished: Notify::new(),
            metrics: crate::metrics::Metrics::default(),
            credentials: Mutex::default(),
            lease_owner: new_lease_owner(),
            parse_pool: verify::pool::ParsePool::per_core(),
        })
    }

    /// The sites served now.
    pub fn sites(&self) -> Arc<Sites> {
        self.sites.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Reads the sites of the configuration file (and `[sites] dir`) again and serves them
    /// from now on: new sites are routed to, removed ones no longer (their data stays until
    /// `backfeed forget-site`). A file that does not parse changes nothing. Returns the names
    /// added and removed.
    pub fn reload_sites(&self) -> Result<(Vec<String>, Vec<String>), String> {
        let fresh = self.cfg.reread_sites().map_err(|e| e.to_string())?;
        let old = self.sites();
        let names = |s: &Sites| -> std::collections::BTreeSet<String> {
            s.list.iter().map(|s| s.name.clone()).collect()
        };
        let (before, after) = (names(&old), names(&fresh));
        self.store
            .set_site_routes(fresh.routes.clone())
            .map_err(|e| e.to_string())?;
        self.store
            .set_notify_channels(&self.cfg.notify.channels(&fresh))
            .map_err(|e| e.to_string())?;
        *self.sites.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(fresh);
        Ok((
            after.difference(&before).cloned().collect(),
            before.difference(&after).cloned().collect(),
        ))
    }

    /// [`Context::reload_sites`], saying in the log what changed (or why nothing did).
    pub fn reload_sites_logged(&self) {
        match self.reload_sites() {
            Ok((added, removed)) if added.is_empty() && removed.is_empty() => {
                tracing::debug!(
                    sites = self.sites().list.len(),
                    "sites read again: no change"
                );
            }
            Ok((added, removed)) => tracing::info!(
                sites = self.sites().list.len(), added = %added.join(","), removed = %removed.join(","),
                "sites changed: added ones are served now, removed ones no longer (their data stays until `backfeed forget-site`)"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "sites not read again: the configuration has a problem; serving the sites read before")
            }
        }
    }

    /// Whether `url` is under one of the sites served.
    pub fn is_under_any_site(&self, url: &Url) -> bool {
        self.store.site_routes().route(url).is_some()
    }

    /// Whether a new verified mention of `target` waits for approval: its site's moderation
    /// mode (`[moderation] mode` when the site says nothing, or the target is under none).
    pub fn holds_new(&self, target: &str) -> bool {
        let sites = self.sites();
        sites
            .for_target(target)
            .map_or_else(|| self.cfg.moderation.holds(), |s| s.holds)
    }

    /// Names for feed metadata: those of `site`, else of the first site (the only one, on a
    /// single site), else of this server.
    pub fn feed_names(&self, site: Option<&SiteConfig>) -> crate::model::SiteNames {
        let sites = self.sites();
        let site = site.or_else(|| sites.first());
        crate::model::SiteNames {
            title: site.map_or_else(|| "backfeed".into(), |s| s.title.clone()),
            home_url: site.map_or_else(
                || self.cfg.server.public_url.to_string(),
                |s| s.base_url.to_string(),
            ),
            public_url: self.cfg.server.public_url.to_string(),
        }
    }

    /// The domain block that covers `url`'s host, from the config or the store. A store that
    /// cannot answer is an error, never "nothing is blocked": blocks fail closed.
    pub fn blocked_domain(&self, url: &str) -> Result<Option<String>, crate::store::StoreError> {
        let Some(host) = host_of(url) else {
            return Ok(None);
        };
        let stored = self.store.blocked_domains()?;
        Ok(self
            .cfg
            .moderation
            .blocked_domains
            .iter()
            .chain(stored.iter())
            .find(|d| host_in_domain(&host, d))
            .cloned())
    }
}

/// A lease owner for one job loop (see [`crate::store::new_owner`]): never shared by two loops.
pub fn new_lease_owner() -> String {
    crate::store::new_owner()
}

/// Renews every lease of `owner` every third of `[store] lease_secs` until dropped: a loop
/// holds what it leased (a send run its post, a notifier its deliveries) for as long as it
/// works on it, however slow the third party, and no longer than a lease after it stopped (a
/// crash, a kill). The verification worker renews in its own select loop instead.
pub struct LeaseRenewer(tokio::task::JoinHandle<()>);

impl LeaseRenewer {
    pub fn start(ctx: &Context, owner: &str) -> LeaseRenewer {
        let (store, owner) = (ctx.store.clone(), owner.to_string());
        let secs = ctx.cfg.store.lease_secs;
        LeaseRenewer(tokio::spawn(async move {
            let mut tick =
                tokio::time::interval(std::time::Duration::from_secs((secs as u64 / 3).max(1)));
            loop {
                tick.tick().await;
                store.renew_leases(&owner, secs).or_log("lease not renewed");
            }
        }))
    }
}

impl Drop for LeaseRenewer {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Backoff for transient failures: 1, 2, 4 … minutes, at most about four hours.
pub fn retry_delay_secs(attempts: i64) -> i64 {
    60 * (1 << attempts.clamp(0, 8))
}
