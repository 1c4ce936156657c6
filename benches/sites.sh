#!/usr/bin/env bash
# Many sites (issue 26), on nginx's loopback web (benches/loopback-web.sh):
# 1. Fairness: N (10,000) webmentions queued for site "flood" (sources on 50 loopback hosts),
#    then one for site "single": how long until the single one is verified, and how many of the
#    flood's were verified meanwhile (the goal: within the time of a few jobs).
# 2. Scale: SITES (1,000) sites, one file each in [sites] dir, each with its own feed of 5 posts:
#    `serve`'s start until /healthz answers, its first crawl of every
#    site as `serve` starts (wall time, requests), its memory once idle, a crawl cycle beside it
#    (`backfeed crawl`: wall time, requests, peak RSS), a ping for the last site.
#   bash benches/sites.sh                 (N=10000 SITES=1000)
#   STORE=postgres bash benches/sites.sh  on PostgreSQL (benches/store.sh)
#   PART=1 / PART=2                        one part only
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-10000}
HOSTS=${HOSTS:-50}
SITES=${SITES:-1000}
[[ -n "${NOBUILD:-}" ]] || cargo build --release --quiet --bin backfeed
source benches/loopback-web.sh
bf() { ./target/release/backfeed --config "$WORK/backfeed.toml" "$@"; }
metric() { curl -s http://127.0.0.1:18090/metrics | awk -v m="$1" 'index($0, m) == 1 { print $2 }'; }
wait_healthy() { until curl -sf "http://127.0.0.1:18090/healthz" >/dev/null; do sleep 0.02; done; }
# The sites' pages are all on one host: per-host limits as in e2e_verify.sh.
FETCH=$'[fetch]\nallow_private_addresses = true\nconcurrency = 32\nper_host = 2\nper_host_per_minute = 0'

if [[ "${PART:-1}" == 1 ]]; then
  echo "== fairness: $N webmentions queued for one site, then one for another (${STORE:-sqlite})"
  mkdir -p "$WORK/www/other/post" "$WORK/www/q"
  SINGLE_POST="http://127.0.0.1:$WEB_PORT/other/post/"
  echo "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Other</title><item><title>Other post</title><link>$SINGLE_POST</link></item></channel></rss>" > "$WORK/www/other/feed.xml"
  echo "<title>Other post</title><article><p>Another blog.</p></article>" > "$WORK/www/other/post/index.html"
  echo "<title>A friend</title><article class=\"h-entry\"><p class=\"e-content\">Read <a href=\"$SINGLE_POST\">this</a>.</p></article>" > "$WORK/www/q/single.html"
  { cat <<TOML
[[site]]
name = "flood"
base_url = "http://127.0.0.1:$WEB_PORT/blog/"
feeds = ["http://127.0.0.1:$WEB_PORT/blog/feed.xml"]
[[site]]
name = "single"
base_url = "http://127.0.0.1:$WEB_PORT/other/"
feeds = ["http://127.0.0.1:$WEB_PORT/other/feed.xml"]
TOML
    server_config "$FETCH"; } > "$WORK/backfeed.toml"
  bf crawl >/dev/null
  RUST_LOG=backfeed=warn ./target/release/backfeed --config "$WORK/backfeed.toml" serve 2>"$WORK/serve.log" &
  pid=$!
  wait_healthy
  post="http%3A%2F%2F127.0.0.1%3A$WEB_PORT%2Fblog%2F2024%2Fhello%2F"
  for i in $(seq 1 "$N"); do echo "http://127.0.0.$((i % HOSTS + 2)):$WEB_PORT/p/$i.html"; done |
    awk -v post="$post" '{ gsub(":", "%3A"); gsub("/", "%2F"); print "next\nurl = \"http://127.0.0.1:18090/webmention\"\ndata = \"source=" $0 "&target=" post "\"\noutput = /dev/null" }' > "$WORK/curl.cfg"
  start=$(date +%s.%N)
  curl -s --no-progress-meter --parallel --parallel-max 64 -K "$WORK/curl.cfg"
  queued=$(date +%s.%N)
  before=$(metric 'backfeed_mentions{status="verified"}')
  curl -s -o /dev/null --data-urlencode "source=http://127.0.0.1:$WEB_PORT/q/single.html" \
    --data-urlencode "target=$SINGLE_POST" http://127.0.0.1:18090/webmention
  sent=$(date +%s.%N)
  until curl -s "http://127.0.0.1:18090/api/count.json?target=$SINGLE_POST" | grep -q '"count": 1'; do sleep 0.01; done
  single_done=$(date +%s.%N)
  after=$(metric 'backfeed_mentions{status="verified"}')
  until [[ "$(metric 'backfeed_queue_depth')" == 0 ]]; do sleep 0.05; done
  drained=$(date +%s.%N)
  total=$(metric 'backfeed_mentions{status="verified"}')
  kill -TERM "$pid"; wait "$pid" || true
  python3 - "$start" "$queued" "$sent" "$single_done" "$drained" "${before:-0}" "${after:-0}" "${total:-0}" <<'PY'
import sys
start, queued, sent, single, drained, before, after, total = map(float, sys.argv[1:])
rate = (total - 1) / (drained - start)
print(f"  flood queued in {queued-start:.2f} s ({before:.0f} of it verified by then); the single ping verified "
      f"{(single-sent)*1000:.0f} ms after it was sent, while {max(after-before-1, 0):.0f} of the flood's were verified "
      f"(the flood drained at {rate:.0f}/s: one job ≈ {1000/rate:.1f} ms, so ≈ {(single-sent)*rate:.1f} jobs' time)")
PY
  store_reset "$WORK/backfeed.db"
fi

if [[ "${PART:-2}" == 2 ]]; then
  echo "== scale: $SITES sites in [sites] dir, 5 posts each (${STORE:-sqlite})"
  sed -i "s|access_log off;|access_log $WORK/access.log;|" "$WORK/nginx.conf"
  nginx -c "$WORK/nginx.conf" -s reload
  mkdir -p "$WORK/sites.d"
  python3 - "$WORK" "$SITES" "$WEB_PORT" <<'PY'
import sys, os
work, sites, port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for s in range(sites):
    base = f"http://127.0.0.1:{port}/s/{s}/"
    os.makedirs(f"{work}/www/s/{s}", exist_ok=True)
    items = "".join(f"<item><title>Post {p}</title><link>{base}post-{p}/</link></item>" for p in range(5))
    open(f"{work}/www/s/{s}/feed.xml", "w").write(
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>Site {s}</title>{items}</channel></rss>')
    for p in range(5):
        os.makedirs(f"{work}/www/s/{s}/post-{p}", exist_ok=True)
        open(f"{work}/www/s/{s}/post-{p}/index.html", "w").write(f"<title>Post {p}</title><article>…</article>")
    open(f"{work}/sites.d/site-{s:04}.toml", "w").write(
        f'name = "site-{s}"\nbase_url = "{base}"\nfeeds = ["{base}feed.xml"]\ntitle = "Site {s}"\n')
PY
  { printf '[sites]\ndir = "%s"\n' "$WORK/sites.d"; server_config "$FETCH"; } > "$WORK/backfeed.toml"
  : > "$WORK/access.log"
  start=$(date +%s.%N)
  RUST_LOG=backfeed=info ./target/release/backfeed --config "$WORK/backfeed.toml" serve 2>"$WORK/serve.log" &
  pid=$!
  wait_healthy
  up=$(date +%s.%N)
  # `serve` crawls as it starts: every site's feed and home page, their posts learned.
  until grep -q 'schedule="crawl"' "$WORK/serve.log"; do sleep 0.01; done
  crawled=$(date +%s.%N)
  requests=$(wc -l < "$WORK/access.log")
  sleep 5
  idle_rss=$(awk '/VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$pid/status")
  python3 - "$start" "$up" "$crawled" "$idle_rss" "$requests" "$(bf posts --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" <<'PY'
import sys
start, up, crawled = map(float, sys.argv[1:4])
rss, requests, posts = sys.argv[4:]
print(f"  serve: /healthz answered {(up-start)*1000:.0f} ms after start; its first crawl of every site done "
      f"{crawled-start:.2f} s after start ({requests} requests, {posts} posts known); then idle at {rss} MB RSS")
PY
  : > "$WORK/access.log"
  /usr/bin/time -f "%e %M" -o "$WORK/time.txt" ./target/release/backfeed --config "$WORK/backfeed.toml" crawl >/dev/null 2>>"$WORK/crawl.log"
  read -r secs kb < "$WORK/time.txt"
  echo "  a crawl cycle (\`backfeed crawl\` beside it, feeds unchanged): ${secs} s wall, $(wc -l < "$WORK/access.log") requests ($(grep -c '" 304 ' "$WORK/access.log" || true) answered 304), peak RSS $((kb / 1024)) MB; errors logged: $(grep -c ERROR "$WORK/crawl.log" || true)"
  last=$((SITES - 1))
  code=$(curl -s -o /dev/null -w '%{http_code}' --data-urlencode "source=http://127.0.0.2:$WEB_PORT/p/1.html" \
    --data-urlencode "target=http://127.0.0.1:$WEB_PORT/s/$last/post-1/" http://127.0.0.1:18090/webmention)
  echo "  a ping for site-$last: HTTP $code; RSS after $(awk '/VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$pid/status") MB"
  kill -TERM "$pid"; wait "$pid" || true
fi
