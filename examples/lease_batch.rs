//! For `benches/fleet.sh`: how long leasing one batch of verification jobs takes on a store
//! with many jobs queued (the fleet's hot query: `FOR UPDATE SKIP LOCKED` on PostgreSQL).
//! Leases `ROUNDS` batches of `BATCH` jobs (fair between hosts, `per_host` 2) and prints the
//! median and the slowest. Leases last ten minutes, so each round leases past the jobs the
//! rounds before it hold, as a busy fleet does.
//!
//! Usage: lease_batch (BACKFEED_DATABASE_URL=postgres://… or STORE_PATH=file.db) [BATCH] [ROUNDS]

use backfeed::store::{GroupCommit, Location, Store};
use std::sync::Arc;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let batch: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(32);
    let rounds: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(50);
    let location = match std::env::var("BACKFEED_DATABASE_URL") {
        Ok(url) => Location::Postgres { url, pool_size: 4 },
        Err(_) => Location::Sqlite(
            std::env::var("STORE_PATH")
                .expect("STORE_PATH or BACKFEED_DATABASE_URL")
                .into(),
        ),
    };
    let store = Arc::new(Store::open_at(&location).expect("the store opens"));
    let commit = GroupCommit::start(store.clone());
    let owner = backfeed::store::new_owner();
    let mut times = Vec::with_capacity(rounds);
    let mut leased = 0;
    for _ in 0..rounds {
        let started = std::time::Instant::now();
        let jobs = commit
            .lease_due(
                batch,
                600,
                owner.clone(),
                backfeed::store::HostRoom {
                    per_host: 2,
                    ..Default::default()
                },
                false,
            )
            .await
            .expect("a lease");
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        leased += jobs.len();
    }
    times.sort_by(|a, b| a.total_cmp(b));
    println!(
        "leased {leased} jobs in {rounds} batches of {batch}: median {:.2} ms, slowest {:.2} ms",
        times[times.len() / 2],
        times[times.len() - 1]
    );
}
