#!/usr/bin/env bash
# The fleet on PostgreSQL (issue 25):
# 1. verification throughput with one worker process, then with two, on the same machine:
#    N webmentions (default 10,000) to pages on 50 loopback hosts (nginx), all verified;
#    what coordinating through the store (leases, fleet-wide per-host slots) costs;
# 2. the time to lease one batch of 32 jobs with 1,000,000 jobs queued.
#   bash benches/fleet.sh                  (N=10000; BENCH_DATABASE_URL as in benches/store.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-10000}
HOSTS=${HOSTS:-50}
STORE=postgres
[[ -n "${NOBUILD:-}" ]] || cargo build --release --quiet --bin backfeed --example lease_batch
source benches/loopback-web.sh
urls="$WORK/urls.txt"
for i in $(seq 1 "$N"); do echo "http://127.0.0.$((i % HOSTS + 2)):$WEB_PORT/p/$i.html"; done > "$urls"
post="http%3A%2F%2F127.0.0.1%3A$WEB_PORT%2Fblog%2F2024%2Fhello%2F"
awk -v post="$post" '{ gsub(":", "%3A"); gsub("/", "%2F"); print "next\nurl = \"http://127.0.0.1:18090/webmention\"\ndata = \"source=" $0 "&target=" post "\"\noutput = /dev/null" }' "$urls" > "$WORK/curl.cfg"

# Runs the fleet given as "roles,…" words (one process each), sends the N pings to the first,
# and prints how long until all were verified.
run_fleet() {
  store_reset ""
  write_backfeed_config $'[fetch]\nallow_private_addresses = true\nconcurrency = 32\nper_host = 2\nper_host_per_minute = 0'
  ./target/release/backfeed --config "$WORK/backfeed.toml" crawl >/dev/null
  pids=()
  local i=0
  for roles in "$@"; do
    sed -e "s/^listen = .*/listen = \"127.0.0.1:$((18090 + i))\"/" -e "s/^metrics_listen = .*/metrics_listen = \"\"\ninstance_name = \"bench-$i\"/" \
      "$WORK/backfeed.toml" > "$WORK/fleet-$i.toml"
    RUST_LOG=backfeed=warn ./target/release/backfeed --config "$WORK/fleet-$i.toml" serve --roles "$roles" 2>"$WORK/serve-$i.log" &
    pids+=($!)
    i=$((i + 1))
  done
  until curl -sf "http://127.0.0.1:18090/healthz" >/dev/null; do sleep 0.1; done
  local start done_at verified
  start=$(date +%s.%N)
  curl -s --no-progress-meter --parallel --parallel-max 64 -K "$WORK/curl.cfg"
  while :; do
    verified=$(store_sql "" "SELECT COUNT(*) FROM mentions WHERE status = 'verified'")
    [[ "$verified" -ge "$N" ]] && break
    sleep 0.1
  done
  done_at=$(date +%s.%N)
  kill -TERM "${pids[@]}"; wait "${pids[@]}" || true
  python3 -c "import sys; s, d, n = map(float, sys.argv[1:]); print(f'  {n:.0f} verified in {d - s:.2f} s: {n / (d - s):.0f} pages/s')" "$start" "$done_at" "$N"
}

echo "== one process (http, worker, schedule)"
run_fleet http,worker,schedule
echo "== two worker processes (http, worker, schedule + worker)"
run_fleet http,worker,schedule worker

echo "== leasing a batch of 32 with 1,000,000 jobs queued"
store_reset ""
./target/release/backfeed --config "$WORK/backfeed.toml" migrate >/dev/null
store_sql "" "INSERT INTO mentions (source, target, target_key, kind, first_seen, updated_at)
  SELECT 'http://h' || (i % 5000) || '.example/p/' || i, 'https://blog.example/p/', 'blog.example/p/', 'webmention',
         '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z' FROM generate_series(1, 1000000) i;
  INSERT INTO jobs (kind, subject, next_try) SELECT 'verify', id, timestamptz '2026-01-01T00:00:00Z' + (id % 60) * interval '1 second' FROM mentions;
  ANALYZE;" >/dev/null
./target/release/examples/lease_batch 32 100
