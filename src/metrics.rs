//! What `/metrics` shows, in Prometheus's text format through `prometheus-client`: requests and
//! their latency per route, candidates by outcome, fetch errors, rate limiting; and, read at
//! each scrape, the queue, mentions by status (every status, zero included), pending
//! notifications, when each schedule last finished (the usual alert for jobs that stop),
//! build information and the process's own figures.
//!
//! Counting is cheap and lock-free per series; nothing here touches the store except the
//! scrape itself.

use crate::config::NotifyConfig;
use crate::store::Store;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OneLabel {
    name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ScheduleLabel {
    schedule: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TaskLabel {
    task: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// Every series, registered once.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    candidates: Family<OutcomeLabel, Counter>,
    rate_limited: Counter,
    fetch_errors: Counter,
    queue_depth: Gauge,
    mentions: Family<StatusLabel, Gauge>,
    notifications_pending: Family<OneLabel, Gauge>,
    last_run: Family<ScheduleLabel, FloatGauge>,
    panics: Family<TaskLabel, Counter>,
    resident_bytes: Gauge,
    open_fds: Gauge,
    cpu_seconds: FloatGauge,
    start_time: FloatGauge,
    instances: Gauge,
    instance_checked: Family<InstanceLabel, Gauge>,
    instance_requests: Family<InstanceLabel, Gauge>,
    /// This process's own totals, for its heartbeat (the families above are the fleet's).
    checked_here: AtomicU64,
    requests_here: AtomicU64,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InstanceLabel {
    instance: String,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0])
        });
        let candidates = Family::<OutcomeLabel, Counter>::default();
        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").into(),
            })
            .set(1);
        let metrics = Metrics {
            requests,
            latency,
            candidates,
            rate_limited: Counter::default(),
            fetch_errors: Counter::default(),
            queue_depth: Gauge::default(),
            mentions: Family::default(),
            notifications_pending: Family::default(),
            last_run: Family::default(),
            panics: Family::default(),
            resident_bytes: Gauge::default(),
            open_fds: Gauge::default(),
            cpu_seconds: FloatGauge::default(),
            start_time: FloatGauge::default(),
            instances: Gauge::default(),
            instance_checked: Family::default(),
            instance_requests: Family::default(),
            checked_here: AtomicU64::new(0),
            requests_here: AtomicU64::new(0),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register(
            "backfeed_http_requests",
            "HTTP requests by route and status",
            metrics.requests.clone(),
        );
        r.register(
            "backfeed_http_request_duration_seconds",
            "Time to answer a request, by route",
            metrics.latency.clone(),
        );
        r.register(
            "backfeed_candidates",
            "Candidates processed, by outcome",
            metrics.candidates.clone(),
        );
        r.register(
            "backfeed_rate_limited",
            "Requests refused with 429",
            metrics.rate_limited.clone(),
        );
        r.register(
            "backfeed_fetch_errors",
            "Fetches that produced no response",
            metrics.fetch_errors.clone(),
        );
        r.register(
            "backfeed_queue_depth",
            "Jobs waiting in the queue",
            metrics.queue_depth.clone(),
        );
        r.register(
            "backfeed_mentions",
            "Stored mentions by status",
            metrics.mentions.clone(),
        );
        r.register(
            "backfeed_notifications_pending",
            "Notification deliveries not made yet, by channel",
            metrics.notifications_pending.clone(),
        );
        r.register(
            "backfeed_last_run_timestamp_seconds",
            "When each schedule (or a run by hand) last finished",
            metrics.last_run.clone(),
        );
        r.register(
            "backfeed_task_panics",
            "Scheduled runs that panicked (the schedule goes on), by task",
            metrics.panics.clone(),
        );
        r.register("backfeed_build_info", "The running version", build);
        r.register(
            "process_resident_memory_bytes",
            "Resident memory",
            metrics.resident_bytes.clone(),
        );
        r.register(
            "process_open_fds",
            "Open file descriptors",
            metrics.open_fds.clone(),
        );
        r.register(
            "process_cpu_seconds",
            "CPU time used (user and system)",
            metrics.cpu_seconds.clone(),
        );
        r.register(
            "process_start_time_seconds",
            "When the process started (Unix time)",
            metrics.start_time.clone(),
        );
        r.register(
            "backfeed_instances",
            "Live processes serving this store (heartbeat within the last 20 s)",
            metrics.instances.clone(),
        );
        r.register(
            "backfeed_instance_checked",
            "Jobs each live process checked since it started",
            metrics.instance_checked.clone(),
        );
        r.register(
            "backfeed_instance_requests",
            "HTTP requests each live process answered since it started",
            metrics.instance_requests.clone(),
        );
        metrics.start_time.set(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
        );
        Metrics {
            registry,
            ..metrics
        }
    }
}

impl Metrics {
    /// A scheduled run that panicked (see `schedule::supervised`).
    pub fn count_panic(&self, task: &str) {
        self.panics
            .get_or_create(&TaskLabel { task: task.into() })
            .inc();
    }

    pub fn count_outcome(&self, word: &'static str) {
        self.checked_here
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.candidates
            .get_or_create(&OutcomeLabel {
                outcome: word.into(),
            })
            .inc();
    }

    pub fn count_request(&self, route: &str, status: u16, seconds: f64) {
        self.requests_here
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.requests
            .get_or_create(&RequestLabels {
                route: route.into(),
                status: status.to_string(),
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                route: route.into(),
            })
            .observe(seconds);
    }

    /// What this process did since it started, for its heartbeat.
    pub fn work_done(&self) -> crate::store::WorkDone {
        use std::sync::atomic::Ordering::Relaxed;
        crate::store::WorkDone {
            checked: self.checked_here.load(Relaxed),
            requests: self.requests_here.load(Relaxed),
        }
    }

    pub fn count_rate_limited(&self) {
        self.rate_limited.inc();
    }

    /// The text a scrape answers, with the store's and the process's figures read now
    /// (`fetch_errors`: the fetcher's count so far; `notify` labels the delivery channels).
    pub fn render(
        &self,
        store: &Store,
        notify: &NotifyConfig,
        sites: &crate::config::Sites,
        fetch_errors: u64,
    ) -> String {
        self.fetch_errors
            .inner()
            .store(fetch_errors, std::sync::atomic::Ordering::Relaxed);
        if let Ok(counts) = store.counts() {
            self.queue_depth.set(counts.queue_depth);
            for status in ["pending", "verified", "held", "rejected", "deleted"] {
                let n = counts
                    .by_status
                    .iter()
                    .find(|(s, _)| s == status)
                    .map_or(0, |(_, n)| *n);
                self.mentions
                    .get_or_create(&StatusLabel {
                        status: status.into(),
                    })
                    .set(n);
            }
        }
        if let Ok(pending) = store.pending_deliveries() {
            for p in pending {
                self.notifications_pending
                    .get_or_create(&OneLabel {
                        name: notify.channel_label(&p.channel, sites),
                    })
                    .set(p.pending);
            }
        }
        for schedule in ["crawl", "reverify"] {
            let finished = store
                .schedule_run(schedule)
                .ok()
                .and_then(|r| r.last_end)
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
                .map_or(0.0, |t| t.timestamp() as f64);
            self.last_run
                .get_or_create(&ScheduleLabel {
                    schedule: schedule.into(),
                })
                .set(finished);
        }
        if let Ok(live) = store.live_instances() {
            self.instances.set(live.len() as i64);
            self.instance_checked.clear();
            self.instance_requests.clear();
            for instance in live {
                let label = InstanceLabel {
                    instance: instance.name,
                };
                self.instance_checked
                    .get_or_create(&label)
                    .set(instance.checked);
                self.instance_requests
                    .get_or_create(&label)
                    .set(instance.requests);
            }
        }
        self.read_process();
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }

    /// Linux's /proc figures for this process (left at zero elsewhere).
    fn read_process(&self) {
        // SAFETY: sysconf only reads system constants.
        let (page, ticks) = unsafe {
            (
                libc::sysconf(libc::_SC_PAGESIZE),
                libc::sysconf(libc::_SC_CLK_TCK),
            )
        };
        if let Ok(statm) = std::fs::read_to_string("/proc/self/statm")
            && let Some(rss) = statm
                .split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<i64>().ok())
        {
            self.resident_bytes.set(rss * page.max(1));
        }
        if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
            // Fields after the command name (which may hold spaces): utime is 14th, stime 15th.
            let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
            let fields: Vec<&str> = after.split_whitespace().collect();
            let tick = |i: usize| {
                fields
                    .get(i)
                    .and_then(|v| v.parse::<f64>().ok())
                    .unwrap_or(0.0)
            };
            self.cpu_seconds
                .set((tick(11) + tick(12)) / ticks.max(1) as f64);
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            self.open_fds.set(fds.count() as i64);
        }
    }
}
