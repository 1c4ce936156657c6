//! The fetcher's politeness kept with the fleet ([`crate::fetch::SharedLimits`] over the
//! store's host slots and minutes, see `store::fleet`), and the slots this process keeps a
//! moment between two fetches to one host.
//!
//! Why keep them: a fleet slot taken and given back per fetch was two statements a page — a
//! sixth of what PostgreSQL ran while verifying. A slot a fetch gives back is kept here for
//! [`SLOT_KEPT_FOR`], and this process's next fetch to that host takes it without asking the
//! store (on its async thread: no hop to a blocking one, see `take_held_slot`); one not taken
//! again is given back then, so another process waits at most that much longer for a host
//! this one has stopped fetching from. A slot is taken for the fetch's hold plus
//! [`SLOT_HELD_LONGER_SECS`] and used again only while that covers a whole fetch's hold, so a
//! row never outlives what its holder is allowed. Leasing does not count this process's
//! own slots against its jobs (`store::HostRoom`): a kept slot is its next job's.

use crate::model::OrLog;
use crate::store::{HostSlot, Store};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// How long a slot given back by a fetch is kept for this process's next fetch to its host.
pub const SLOT_KEPT_FOR: Duration = Duration::from_millis(250);

/// How much longer than one fetch's hold a slot is taken for (its row's `until`): the time it
/// may serve several fetches before it is taken anew. A killed process's slots free themselves
/// this much later (a restart under its name frees them at once).
pub const SLOT_HELD_LONGER_SECS: i64 = 15;

/// A slot this process holds and no fetch is using.
struct KeptSlot {
    slot: HostSlot,
    /// When its row's `until` passes (or a little before).
    until: Instant,
    kept_at: Instant,
}

/// Kept slots by host.
type KeptSlots = Mutex<HashMap<String, Vec<KeptSlot>>>;

/// [`crate::fetch::SharedLimits`] kept in the store, for every process serving it.
pub(super) struct FleetLimits {
    store: Arc<Store>,
    /// This process's name: its slots carry it, so a restart under the name frees them.
    instance: String,
    kept: Arc<KeptSlots>,
}

impl FleetLimits {
    /// Limits for the process named `instance`, with a thread that gives back the slots kept
    /// longer than [`SLOT_KEPT_FOR`] (it ends with the limits).
    pub(super) fn new(store: Arc<Store>, instance: String) -> Arc<FleetLimits> {
        let limits = Arc::new(FleetLimits {
            store,
            instance,
            kept: Arc::default(),
        });
        let (store, kept) = (limits.store.clone(), Arc::downgrade(&limits.kept));
        std::thread::Builder::new()
            .name("backfeed-fleet-slots".into())
            .spawn(move || give_back_unused(&store, &kept))
            .or_log("the thread giving back unused fleet slots did not start (they expire)");
        limits
    }
}

/// Gives back, every half [`SLOT_KEPT_FOR`], the slots kept longer than that; ends when the
/// limits are gone.
fn give_back_unused(store: &Store, kept: &Weak<KeptSlots>) {
    loop {
        std::thread::sleep(SLOT_KEPT_FOR / 2);
        let Some(kept) = kept.upgrade() else {
            return;
        };
        let unused: Vec<KeptSlot> = {
            let mut kept = kept.lock().unwrap_or_else(|e| e.into_inner());
            let mut unused = Vec::new();
            kept.retain(|_, slots| {
                let (old, fresh) = std::mem::take(slots)
                    .into_iter()
                    .partition(|k| k.kept_at.elapsed() >= SLOT_KEPT_FOR);
                *slots = fresh;
                unused.extend::<Vec<KeptSlot>>(old);
                !slots.is_empty()
            });
            unused
        };
        give_back(store, unused);
    }
}

fn give_back(store: &Store, slots: impl IntoIterator<Item = KeptSlot>) {
    for k in slots {
        store
            .give_back_host_slot(&k.slot)
            .or_log("a fleet slot not given back (it frees itself when it expires)");
    }
}

impl Drop for FleetLimits {
    /// The process stops fetching: what it keeps is given back now.
    fn drop(&mut self) {
        let kept = std::mem::take(&mut *self.kept.lock().unwrap_or_else(|e| e.into_inner()));
        give_back(&self.store, kept.into_values().flatten());
    }
}

/// A fleet slot held by one fetch; kept for the next fetch to its host when the fetch ends.
struct FleetSlot {
    kept: Arc<KeptSlots>,
    slot: HostSlot,
    until: Instant,
}

impl Drop for FleetSlot {
    fn drop(&mut self) {
        let kept = KeptSlot {
            slot: self.slot.clone(),
            until: self.until,
            kept_at: Instant::now(),
        };
        let mut slots = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        slots.entry(kept.slot.host.clone()).or_default().push(kept);
    }
}

impl crate::fetch::SharedLimits for FleetLimits {
    fn take_held_slot(&self, host: &str, hold_secs: i64) -> Option<Box<dyn Send + Sync>> {
        let lasting = Instant::now() + Duration::from_secs(hold_secs.max(0) as u64);
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        let slots = kept.get_mut(host)?;
        let k = slots.swap_remove(slots.iter().position(|k| k.until >= lasting)?);
        if slots.is_empty() {
            kept.remove(host);
        }
        Some(Box::new(FleetSlot {
            kept: self.kept.clone(),
            slot: k.slot,
            until: k.until,
        }))
    }

    fn take_slot(
        &self,
        host: &str,
        per_host: usize,
        hold_secs: i64,
    ) -> Result<Option<Box<dyn Send + Sync>>, String> {
        if let Some(slot) = self.take_held_slot(host, hold_secs) {
            return Ok(Some(slot));
        }
        // None of the host's kept slots lasts a whole fetch: given back before one is taken
        // anew (a slot near its end may be the only one).
        let near_their_end = self
            .kept
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(host)
            .unwrap_or_default();
        give_back(&self.store, near_their_end);
        let held_secs = hold_secs + SLOT_HELD_LONGER_SECS;
        // Before the store's clock starts the row's: the slot is never used past its row.
        let until = Instant::now() + Duration::from_secs(held_secs.max(0) as u64);
        let taken = self
            .store
            .take_host_slot(&self.instance, host, per_host, held_secs)
            .map_err(|e| e.to_string())?;
        Ok(taken.map(|slot| {
            Box::new(FleetSlot {
                kept: self.kept.clone(),
                slot,
                until,
            }) as Box<dyn Send + Sync>
        }))
    }

    fn spend_minute(&self, host: &str, per_minute: u32) -> Result<bool, String> {
        self.store
            .spend_host_minute(host, per_minute)
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fetch::SharedLimits;

    fn holders(db: &crate::store::testing::TestDatabase) -> Vec<Vec<String>> {
        crate::store::testing::Sql::open(&db.location())
            .rows("SELECT host, holder FROM host_slots ORDER BY host, holder")
    }

    /// A fetch's slot serves this process's next fetch to its host without a new row, is
    /// still the fleet's (another process finds the host's share taken meanwhile), and is
    /// given back once unused for a moment.
    #[test]
    fn a_slot_given_back_serves_the_next_fetch_to_its_host_and_is_freed_when_unused() {
        let Some(db) = crate::store::testing::TestDatabase::create("fleet_slots") else {
            return;
        };
        let store = Arc::new(Store::open_at(&db.location()).unwrap());
        let here = FleetLimits::new(store.clone(), "here".into());
        let elsewhere = FleetLimits::new(store.clone(), "elsewhere".into());

        let first = here.take_slot("a.example", 1, 20).unwrap().expect("free");
        let rows = holders(&db);
        assert_eq!(rows.len(), 1);
        drop(first);
        let second = here.take_slot("a.example", 1, 20).unwrap().expect("kept");
        assert_eq!(holders(&db), rows, "the same slot, no new row");
        assert!(
            here.take_held_slot("a.example", 20).is_none(),
            "the one slot is in use"
        );
        drop(second);
        // Without asking the store: only a slot held already, lasting the whole fetch.
        assert!(here.take_held_slot("b.example", 20).is_none());
        let held_longer = 20 + SLOT_HELD_LONGER_SECS + 1;
        assert!(here.take_held_slot("a.example", held_longer).is_none());
        let third = here.take_held_slot("a.example", 20).expect("held");
        assert_eq!(holders(&db), rows, "the same slot again");
        drop(third);
        assert!(
            elsewhere.take_slot("a.example", 1, 20).unwrap().is_none(),
            "a kept slot is still held for the fleet"
        );

        // Given back by the thread a moment later (waited for up to 5 s, for a loaded machine).
        let given_back = (0..50).any(|_| {
            std::thread::sleep(SLOT_KEPT_FOR / 2);
            holders(&db).is_empty()
        });
        assert!(given_back, "given back unused: {:?}", holders(&db));
        let theirs = elsewhere.take_slot("a.example", 1, 20).unwrap();
        assert!(theirs.is_some(), "free for another process now");
    }

    /// A kept slot whose row would end during the next fetch is not used for it: it is given
    /// back and a slot taken anew, for the whole hold.
    #[test]
    fn a_kept_slot_near_its_end_is_taken_anew() {
        let Some(db) = crate::store::testing::TestDatabase::create("fleet_slot_end") else {
            return;
        };
        let store = Arc::new(Store::open_at(&db.location()).unwrap());
        let here = FleetLimits::new(store, "here".into());
        drop(here.take_slot("a.example", 1, 5).unwrap().expect("free"));
        let before = holders(&db);
        // Held for 5 + SLOT_HELD_LONGER_SECS: too short for a fetch that may hold it longer.
        let longer = 5 + SLOT_HELD_LONGER_SECS + 1;
        let _slot = here
            .take_slot("a.example", 1, longer)
            .unwrap()
            .expect("taken anew");
        let after = holders(&db);
        assert_eq!(after.len(), 1);
        assert_ne!(
            after, before,
            "a new holder: the old slot was given back first"
        );
    }
}
