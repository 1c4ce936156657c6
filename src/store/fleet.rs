//! The fleet: many `serve` processes on one store (PostgreSQL), behaving as one daemon.
//!
//! What the processes share lives here, in the store, because the store is the one thing every
//! process of the fleet can see — no process ids or `/proc` across machines:
//! - **instances**: each process registers (name, host, roles, start) and heartbeats; `status`
//!   and `/metrics` list the live ones. A process that stops heartbeating is simply no longer
//!   live; its leases expire and are taken over (see [`super::jobs`]).
//! - **host slots**: each fetch holds one of its host's `per_host` slots for as long as it runs
//!   (at most until the slot's `until`, so a killed process's slots free themselves), so adding
//!   processes never adds requests in flight to one third-party host. A process keeps a slot a
//!   moment for its next fetch to the host (`pipeline::fleet_slots`).
//! - **host minutes**: requests to one host in one wall-clock minute, counted for the fleet
//!   (a fixed window: at a minute's edge two minutes' budgets may meet).
//! - **schedule claims**: a schedule's due time is run by the process that claims it first;
//!   the others see the claim and skip that tick.
//!
//! Slots and minutes are single statements in autocommit: on PostgreSQL each on a pool
//! connection of its own, so a fetch never waits behind the process's batches of writes.

use super::db::{OptionalExtension, params};
use super::{Store, StoreResult};
use crate::model::{now_rfc3339, secs_ago_rfc3339};

/// How often a process heartbeats.
pub const HEARTBEAT_SECS: i64 = 5;
/// A process is live while its last heartbeat is younger than this.
pub const LIVE_SECS: i64 = 4 * HEARTBEAT_SECS;

/// One process of the fleet as `status` shows it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Instance {
    pub name: String,
    pub host: String,
    pub pid: i64,
    pub roles: String,
    pub version: String,
    pub started_at: String,
    pub heartbeat_at: String,
    /// Jobs this process checked (verifications) since it started.
    pub checked: i64,
    /// HTTP requests it answered since it started.
    pub requests: i64,
}

/// A process's own figures, written with each heartbeat.
#[derive(Clone, Copy, Debug, Default)]
pub struct WorkDone {
    pub checked: u64,
    pub requests: u64,
}

/// A fleet-wide slot on one host, held by one fetch; give it back with
/// [`Store::give_back_host_slot`].
#[derive(Clone, Debug)]
pub struct HostSlot {
    pub host: String,
    pub slot: i64,
    pub holder: String,
}

impl Store {
    /// Registers this process (again, if its name was used before: a restart under the same
    /// name replaces the old row, and the host slots its predecessor held — it was killed, or
    /// it would have given them back — are freed now rather than when they expire).
    pub fn register_instance(&self, name: &str, roles: &str, host: &str) -> StoreResult<()> {
        let now = now_rfc3339();
        self.write(|c| {
            c.run(
                "DELETE FROM host_slots WHERE substr(holder, 1, length(?1) + 1) = ?1 || ' '",
                [name],
            )?;
            c.run(
                "INSERT INTO instances (name, host, pid, roles, version, started_at, heartbeat_at, stopped_at, checked, requests)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, NULL, 0, 0)
                 ON CONFLICT (name) DO UPDATE SET host = excluded.host, pid = excluded.pid, roles = excluded.roles,
                     version = excluded.version, started_at = excluded.started_at,
                     heartbeat_at = excluded.heartbeat_at, stopped_at = NULL, checked = 0, requests = 0",
                params![name, host, std::process::id() as i64, roles, env!("CARGO_PKG_VERSION"), now],
            )?;
            Ok(())
        })
    }

    /// Says this process is alive, with what it did so far; prunes what the fleet no longer
    /// needs (expired slots, old minutes and claims, instances gone a day).
    pub fn heartbeat(&self, name: &str, work: WorkDone) -> StoreResult<()> {
        let stamp = now_rfc3339();
        self.write(|c| {
            c.run(
                "UPDATE instances SET heartbeat_at = ?2, checked = ?3, requests = ?4 WHERE name = ?1",
                params![name, stamp, work.checked as i64, work.requests as i64],
            )?;
            c.run("DELETE FROM host_slots WHERE until < ?1", [&stamp])?;
            c.run("DELETE FROM host_minutes WHERE minute < ?1", [secs_ago_rfc3339(600)])?;
            c.run("DELETE FROM schedule_claims WHERE claimed_at < ?1", [secs_ago_rfc3339(7 * 86_400)])?;
            c.run("DELETE FROM instances WHERE heartbeat_at < ?1", [secs_ago_rfc3339(86_400)])?;
            Ok(())
        })
    }

    /// This process stopped cleanly: no longer live.
    pub fn stop_instance(&self, name: &str) -> StoreResult<()> {
        self.write(|c| {
            c.run(
                "UPDATE instances SET stopped_at = ?2 WHERE name = ?1",
                params![name, now_rfc3339()],
            )?;
            Ok(())
        })
    }

    /// The processes that heartbeat within [`LIVE_SECS`] and did not stop, by name.
    pub fn live_instances(&self) -> StoreResult<Vec<Instance>> {
        let since = secs_ago_rfc3339(LIVE_SECS);
        self.read(|c| {
            c.prepare_cached(
                "SELECT name, host, pid, roles, version, started_at, heartbeat_at, checked, requests
                 FROM instances WHERE stopped_at IS NULL AND heartbeat_at >= ?1 ORDER BY name",
            )?
            .query_map([&since], |r| {
                Ok(Instance {
                    name: r.get(0)?,
                    host: r.get(1)?,
                    pid: r.get(2)?,
                    roles: r.get(3)?,
                    version: r.get(4)?,
                    started_at: r.get(5)?,
                    heartbeat_at: r.get(6)?,
                    checked: r.get(7)?,
                    requests: r.get(8)?,
                })
            })?
            .collect()
        })
    }

    /// Takes a free one of `host`'s `per_host` slots for `hold_secs` at most, for the process
    /// named `instance`; `None` when all are held. One statement: a slot is a row, and the
    /// row's key makes two takers of one slot meet, so exactly one of them wins it.
    pub fn take_host_slot(
        &self,
        instance: &str,
        host: &str,
        per_host: usize,
        hold_secs: i64,
    ) -> StoreResult<Option<HostSlot>> {
        let now = now_rfc3339();
        let until = super::jobs::in_secs(hold_secs);
        let holder = format!("{instance} {}", super::new_status_token());
        self.write(|c| {
            for slot in 0..per_host.max(1) as i64 {
                let won = c
                    .prepare_cached(
                        "INSERT INTO host_slots (host, slot, holder, until) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (host, slot) DO UPDATE SET holder = excluded.holder, until = excluded.until
                         WHERE host_slots.until <= ?5
                         RETURNING slot",
                    )?
                    .query_row(params![host, slot, holder, until, now], |r| r.get::<_, i64>(0))
                    .optional()?;
                if won.is_some() {
                    return Ok(Some(HostSlot {
                        host: host.to_string(),
                        slot,
                        holder,
                    }));
                }
            }
            Ok(None)
        })
    }

    /// Gives a slot back (only if it is still this holder's).
    pub fn give_back_host_slot(&self, slot: &HostSlot) -> StoreResult<()> {
        self.write(|c| {
            c.prepare_cached(
                "DELETE FROM host_slots WHERE host = ?1 AND slot = ?2 AND holder = ?3",
            )?
            .execute(params![slot.host, slot.slot, slot.holder])?;
            Ok(())
        })
    }

    /// Counts one request to `host` in this minute, if fewer than `per_minute` were counted;
    /// `false` when the minute's budget is spent.
    pub fn spend_host_minute(&self, host: &str, per_minute: u32) -> StoreResult<bool> {
        let minute = chrono::Utc::now().format("%Y-%m-%dT%H:%M").to_string();
        self.write(|c| {
            Ok(c.prepare_cached(
                "INSERT INTO host_minutes (host, minute, spent) VALUES (?1, ?2, 1)
                 ON CONFLICT (host, minute) DO UPDATE SET spent = host_minutes.spent + 1
                 WHERE host_minutes.spent < ?3
                 RETURNING spent",
            )?
            .query_row(params![host, minute, per_minute as i64], |r| {
                r.get::<_, i64>(0)
            })
            .optional()?
            .is_some())
        })
    }

    /// Claims `schedule`'s run due at `due_at` for `instance`: `true` for the one process that
    /// claims it first, `false` (with who has it) for every other.
    pub fn claim_schedule_run(
        &self,
        schedule: &str,
        due_at: &str,
        instance: &str,
    ) -> StoreResult<Result<(), String>> {
        self.write(|c| {
            let won = c.run(
                "INSERT INTO schedule_claims (schedule, due_at, instance, claimed_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (schedule, due_at) DO NOTHING",
                params![schedule, due_at, instance, now_rfc3339()],
            )? == 1;
            if won {
                return Ok(Ok(()));
            }
            let holder: String = c.query_row(
                "SELECT instance FROM schedule_claims WHERE schedule = ?1 AND due_at = ?2",
                params![schedule, due_at],
                |r| r.get(0),
            )?;
            Ok(Err(holder))
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::store::testing::test_stores;

    #[test]
    fn a_hosts_slots_are_shared_and_freed_by_their_holder_or_by_time() {
        for (store, _keep) in test_stores("fleet_slots") {
            let take = |instance: &str, host: &str, per_host: usize, hold_secs: i64| {
                store
                    .take_host_slot(instance, host, per_host, hold_secs)
                    .unwrap()
            };
            let first = take("test", "a.example", 2, 60).expect("a free slot");
            let second = take("test", "a.example", 2, 60).expect("the second slot");
            assert_ne!(first.slot, second.slot);
            assert!(take("test", "a.example", 2, 60).is_none(), "both held");
            assert!(take("test", "b.example", 2, 60).is_some(), "hosts apart");
            store.give_back_host_slot(&first).unwrap();
            let again = take("test", "a.example", 2, 60).expect("given back");
            store.give_back_host_slot(&again).unwrap();
            store.give_back_host_slot(&second).unwrap();
            // A slot whose holder died (never given back) frees itself when its time is up.
            assert!(take("test", "c.example", 1, 0).is_some());
            assert!(
                take("test", "c.example", 1, 60).is_some(),
                "expired: taken over"
            );
            // A stale holder's give-back does not free its successor's slot.
            store
                .give_back_host_slot(&crate::store::HostSlot {
                    host: "c.example".into(),
                    slot: 0,
                    holder: "old".into(),
                })
                .unwrap();
            assert!(take("test", "c.example", 1, 60).is_none());
            // A process started again under its name frees what its killed predecessor held.
            store.register_instance("test", "worker", "box").unwrap();
            assert!(take("other", "c.example", 1, 60).is_some());
        }
    }

    #[test]
    fn a_minutes_budget_is_spent_once_for_everyone() {
        for (store, _keep) in test_stores("fleet_minutes") {
            let minute = || chrono::Utc::now().format("%H:%M").to_string();
            // Within one minute (a try that crosses a minute's edge is tried again).
            for attempt in 0..3 {
                let host = format!("a{attempt}.example");
                let before = minute();
                let spent: Vec<bool> = (0..4)
                    .map(|_| store.spend_host_minute(&host, 3).unwrap())
                    .collect();
                if minute() == before {
                    assert_eq!(spent, [true, true, true, false]);
                    break;
                }
            }
            assert!(
                store.spend_host_minute("b.example", 1).unwrap(),
                "hosts apart"
            );
        }
    }

    #[test]
    fn a_schedules_tick_is_claimed_once_and_instances_are_listed_while_live() {
        for (store, _keep) in test_stores("fleet_claims") {
            let due = "2026-12-03T04:00:00Z";
            assert_eq!(
                store.claim_schedule_run("crawl", due, "one").unwrap(),
                Ok(())
            );
            assert_eq!(
                store.claim_schedule_run("crawl", due, "two").unwrap(),
                Err("one".into())
            );
            assert_eq!(
                store.claim_schedule_run("reverify", due, "two").unwrap(),
                Ok(())
            );
            // The start-of-serve crawl's tick is a key, not a time (schedule.rs).
            let start = "start 2026-12-03T04:00Z";
            assert_eq!(
                store.claim_schedule_run("crawl", start, "two").unwrap(),
                Ok(())
            );
            assert_eq!(
                store.claim_schedule_run("crawl", start, "one").unwrap(),
                Err("two".into())
            );

            store
                .register_instance("one", "http,worker", "box-a")
                .unwrap();
            store.register_instance("two", "schedule", "box-b").unwrap();
            store
                .heartbeat(
                    "one",
                    super::WorkDone {
                        checked: 7,
                        requests: 9,
                    },
                )
                .unwrap();
            let live = store.live_instances().unwrap();
            let names: Vec<&str> = live.iter().map(|i| i.name.as_str()).collect();
            assert_eq!(names, ["one", "two"]);
            assert_eq!(
                (live[0].checked, live[0].requests, live[0].roles.as_str()),
                (7, 9, "http,worker")
            );
            store.stop_instance("two").unwrap();
            assert_eq!(
                store.live_instances().unwrap().len(),
                1,
                "a stopped process is not live"
            );
        }
    }
}
