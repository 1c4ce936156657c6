#!/usr/bin/env bash
# End-to-end verification throughput (issue 2): 10,000 pages served by nginx from 50 loopback
# hosts; backfeed receives 10,000 webmentions and verifies them all, per-host limits held
# (per_host = 2). Reports pages/s and peak RSS, beside a bare fetch-and-parse loop over the same
# pages (examples/fetch_parse.rs). Goal: backfeed ≥ half the bare loop's rate.
#   bash benches/e2e_verify.sh            (N=10000 HOSTS=50 to change the size)
#   ARTICLE=1 N=10000 HOSTS=16 bash benches/e2e_verify.sh     40 KB articles (issue 15's goal)
#   PAGE=wordpress (or comments) …                            a fixture from benches/fixtures/
#   NOBUILD=1 …                                               the binaries already built
#   STORE=postgres …                                          on PostgreSQL (benches/store.sh)
#   POLL=0.05 …         how often the end is looked for (s): each look is a /metrics scrape,
#                       which counts the mentions by status (~7 ms of PostgreSQL at 10,000);
#                       every 0.25 s costs ~3 % of a core and ends the clock at most 0.25 s late
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-10000}
HOSTS=${HOSTS:-50}
[[ -n "${NOBUILD:-}" ]] || cargo build --release --quiet --bin backfeed --example fetch_parse
source benches/loopback-web.sh
urls="$WORK/urls.txt"
for i in $(seq 1 "$N"); do echo "http://127.0.0.$((i % HOSTS + 2)):$WEB_PORT/p/$i.html"; done > "$urls"

echo "== bare fetch-and-parse loop (concurrency 32, no per-host limit)"
./target/release/examples/fetch_parse "$urls" 32

echo "== backfeed: $N webmentions, verified end to end (concurrency 32, per_host 2)"
write_backfeed_config $'[fetch]\nallow_private_addresses = true\nconcurrency = 32\nper_host = 2\nper_host_per_minute = 0'
bf() { ./target/release/backfeed --config "$WORK/backfeed.toml" "$@"; }
bf crawl >/dev/null
RUST_LOG=backfeed=warn ./target/release/backfeed --config "$WORK/backfeed.toml" serve 2>"$WORK/serve.log" &
pid=$!
until curl -sf "http://127.0.0.1:18090/healthz" >/dev/null; do sleep 0.1; done
post="http%3A%2F%2F127.0.0.1%3A$WEB_PORT%2Fblog%2F2024%2Fhello%2F"
awk -v post="$post" '{ gsub(":", "%3A"); gsub("/", "%2F"); print "next\nurl = \"http://127.0.0.1:18090/webmention\"\ndata = \"source=" $0 "&target=" post "\"\noutput = /dev/null" }' "$urls" > "$WORK/curl.cfg"
start=$(date +%s.%N)
curl -s --no-progress-meter --parallel --parallel-max 64 -K "$WORK/curl.cfg"
accepted=$(date +%s.%N)
while :; do
  metrics=$(curl -s http://127.0.0.1:18090/metrics)
  verified=$(awk '/^backfeed_mentions\{status="verified"\}/ { print $2 }' <<<"$metrics")
  depth=$(awk '/^backfeed_queue_depth/ { print $2 }' <<<"$metrics")
  [[ "${verified:-0}" -ge "$N" ]] && break
  [[ "${depth:-1}" -eq 0 && -n "$verified" ]] && { echo "queue drained with only $verified verified"; break; }
  sleep "${POLL:-0.25}"
done
done_at=$(date +%s.%N)
rss=$(peak_rss_mb "$pid")
kill -TERM "$pid"; wait "$pid" || true
python3 - "$start" "$accepted" "$done_at" "$N" "$rss" <<'PY'
import sys
start, accepted, done, n, rss = map(float, sys.argv[1:])
print(f"accepted {n:.0f} in {accepted-start:.2f} s ({n/(accepted-start):.0f}/s); all verified after {done-start:.2f} s: {n/(done-start):.0f} pages/s end to end (receive + verify); peak RSS {rss:.0f} MB")
PY

echo "== backfeed: verification alone, the same $N candidates re-queued and drained by 'backfeed crawl'"
store_sql "$WORK/backfeed.db" "UPDATE mentions SET status = 'pending', verified_at = NULL;
  INSERT INTO jobs (kind, subject, next_try) SELECT 'verify', id, '2000-01-01T00:00:00Z' FROM mentions;"
/usr/bin/time -f "%e s wall, peak RSS %M KB" ./target/release/backfeed --config "$WORK/backfeed.toml" crawl 2>&1 | tail -n 2 | tee "$WORK/drain.txt"
python3 - "$N" "$WORK/drain.txt" <<'PY'
import sys, re
n = int(sys.argv[1]); text = open(sys.argv[2]).read()
secs = float(re.search(r"([0-9.]+) s wall", text).group(1))
print(f"verified {n} queued candidates in {secs:.2f} s: {n/secs:.0f} pages/s")
PY
