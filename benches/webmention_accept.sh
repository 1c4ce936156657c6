#!/usr/bin/env bash
# Durable POST /webmention accepts per second and latency (issue 3), measured with wrk from
# the same 2-core machine. Every request names a distinct source (on 50 loopback hosts served
# by nginx) and the one post; a 201 is sent only after the candidate is committed to SQLite.
# The worker verifies in the background at the same time, as in production.
# Goal: ≥ 5,000 accepts/s with p99 < 20 ms.
#   bash benches/webmention_accept.sh        (DURATION=10s CONNECTIONS=32 THREADS=2)
#   STORE=postgres …                         on PostgreSQL (benches/store.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
[[ -n "${NOBUILD:-}" ]] || cargo build --release --quiet --bin backfeed
source benches/loopback-web.sh
# WORKER=off points the sources at a closed port, so the worker's fetches fail at once and the
# figure is the receiving path alone.
write_backfeed_config $'[fetch]\nallow_private_addresses = true\nper_host_per_minute = 0'
./target/release/backfeed --config "$WORK/backfeed.toml" crawl >/dev/null
RUST_LOG=backfeed=warn ./target/release/backfeed --config "$WORK/backfeed.toml" serve 2>"$WORK/serve.log" &
pid=$!
until curl -sf http://127.0.0.1:18090/healthz >/dev/null; do sleep 0.1; done
SOURCE_PORT=$WEB_PORT
[[ "${WORKER:-on}" == off ]] && SOURCE_PORT=9
cat > "$WORK/post.lua" <<LUA
local counter = 0
thread_id = 0
local threads = {}
function setup(thread)
  thread:set("thread_id", #threads)
  table.insert(threads, thread)
end
function request()
  counter = counter + 1
  local n = thread_id * 100000000 + counter
  local body = "source=http%3A%2F%2F127.0.0." .. (n % 50 + 2) .. "%3A$SOURCE_PORT%2Fp%2F" .. n .. ".html"
    .. "&target=http%3A%2F%2F127.0.0.1%3A$WEB_PORT%2Fblog%2F2024%2Fhello%2F"
  return wrk.format("POST", "/webmention", {["Content-Type"] = "application/x-www-form-urlencoded"}, body)
end
function done(summary, latency, requests)
  io.write(string.format("non-2xx or errors: %d\n", summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
  io.write(string.format("p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms\n", latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency:percentile(99.9) / 1000))
end
LUA
wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$WORK/post.lua" http://127.0.0.1:18090/webmention | grep -E "Requests/sec|non-2xx|p50|Latency  "
echo "stored candidates: $(store_sql "$WORK/backfeed.db" 'SELECT COUNT(*) FROM mentions' 2>/dev/null || echo '?') · peak RSS $(peak_rss_mb "$pid") MB"
kill -TERM "$pid"; wait "$pid" || true
