#!/usr/bin/env bash
# `bash benches/publish.sh`: the publishing routes at 1,000 and at 100,000 published mentions
# (600 bytes of content each, over 2,000 posts), filled through `backfeed import`; wrk runs each
# route for 5 s on 8 connections and prints p50 / p99, and a 304 for the feed, beside a static
# route's (the machine's floor).
# STORE=postgres: on PostgreSQL (benches/store.sh). VIRAL=1: a third of the mentions are of one
# post (the one the per-post routes ask for), as when a post goes viral.
# MILLION=1 (issue 27): 1,000 then 1,000,000 mentions over 10,000 posts, a tenth of them (100,000)
# of one post, 200 bytes of content; the import's wall time and peak RSS are printed, and the
# routes are asked for that post and for the whole site, JF2 at its first page and page 500;
# then both exports are timed (EXPORTS=0: not).
# STORE=postgres KEEP_DB=1 keeps the filled database; REUSE_DB=NAME measures the routes again on
# such a kept database (of SIZES' one size), without filling it again.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { apt-get install -y -qq wrk >/dev/null; }
[[ -n "${NOBUILD:-}" ]] || cargo build --release --quiet
WORK=$(mktemp -d)
PORT=${BACKFEED_PORT:-18091}
source benches/store.sh
cleanup() { [[ -n "${pid:-}" ]] && kill "$pid" 2>/dev/null; store_drop; rm -rf "$WORK"; }
trap cleanup EXIT
if [[ -n "${MILLION:-}" ]]; then
  SIZES=${SIZES:-"1000 1000000"} POSTS=10000 VIRAL_EVERY=10 WORDS=200
else
  SIZES=${SIZES:-"1000 100000"} POSTS=2000 WORDS=560
  VIRAL_EVERY=$([[ -n "${VIRAL:-}" ]] && echo 3 || echo 0)
fi
# fill N: a webmention.io JF2 file of N mentions over $POSTS posts; every $VIRAL_EVERY-th is of
# post 7 (0: none).
fill() {
  python3 - "$1" "$WORK/history.json" "$VIRAL_EVERY" "$POSTS" "$WORDS" <<'PY'
import json, sys
n, path, viral_every, posts, size = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
types = ["like-of", "in-reply-to", "repost-of", "bookmark-of", "mention-of"]
words = ("A reply with words in it, as replies have, long enough to be a real one. " * 8)[:size]
with open(path, "w", buffering=1 << 20) as f:
    f.write('{"type":"feed","children":[')
    for i in range(n):
        target = f"https://blog.example/posts/{7 if viral_every and i % viral_every == 0 else i % posts}/"
        entry = {"type": "entry", "author": {"type": "card", "name": f"Author {i}", "url": f"https://site{i % 5000}.example/"},
                 "published": f"2023-{1 + i % 12:02d}-01T10:00:00Z", "wm-received": f"2023-{1 + i % 12:02d}-02T10:00:00Z",
                 "wm-source": f"https://site{i % 5000}.example/posts/{i}", "wm-target": target, "wm-property": types[i % 5],
                 "content": {"text": words, "html": f"<p>{words}</p>"}}
        f.write(("," if i else "") + json.dumps(entry))
    f.write("]}")
PY
}
export BENCH_ADMIN_PASSWORD="bench-operator-password"
# operators_pages BASE TARGET: signs in to /admin/ and times its pages — the moderation queue, the
# status page, the decision log and the mentions listing (first page and page 500, of the whole
# store and of the one post) — five requests each, one at a time, printing the median and the
# slowest (an operator's page is asked for by one person, not by wrk).
operators_pages() {
  local base=$1 target=$2 jar="$WORK/cookies" csrf
  csrf=$(curl -s -c "$jar" "$base/admin/login" | grep -o 'name="csrf" value="[^"]*"' | head -1 | cut -d'"' -f4)
  curl -s -b "$jar" -c "$jar" -o /dev/null --data-urlencode "csrf=$csrf" \
    --data-urlencode "password=$BENCH_ADMIN_PASSWORD" "$base/admin/login"
  for page in "/admin/" "/admin/status" "/admin/log" "/admin/mentions" "/admin/mentions?page=500" \
              "/admin/mentions?post=$target" "/admin/mentions?post=$target&page=500"; do
    local times
    times=$(for _ in 1 2 3 4 5; do
      curl -s -b "$jar" -o /dev/null -w '%{http_code} %{time_total}\n' "$base$page"
    done | sort -k2 -n)
    grep -qv '^200 ' <<<"$times" && { echo "  $page: not 200: $times" >&2; return 1; }
    printf "  %-48s median %s ms, slowest %s ms\n" "$page" \
      "$(awk 'NR==3{printf "%.1f", $2*1000}' <<<"$times")" "$(awk 'NR==5{printf "%.1f", $2*1000}' <<<"$times")"
  done
}
measure() {
  local n=$1
  if [[ -n "${REUSE_DB:-}" ]]; then
    export BACKFEED_DATABASE_URL="${BENCH_DATABASE_URL%/*}/$REUSE_DB"
  else
    store_reset "$WORK/b.db"
  fi
  cat > "$WORK/b.toml" <<TOML
[site]
base_url = "https://blog.example/"
[store]
$(store_section "$WORK/b.db")
[server]
listen = "127.0.0.1:$PORT"
public_url = "http://127.0.0.1:$PORT/"
rate_limit_per_client = 0
max_connections_per_client = 0
[schedule]
crawl = "0 0 0 1 1 *"
[admin]
password_env = "BENCH_ADMIN_PASSWORD"
TOML
  if [[ -n "${REUSE_DB:-}" ]]; then
    echo "0 0" > "$WORK/time.txt"
  else
    fill "$n"
    /usr/bin/time -f "%e %M" -o "$WORK/time.txt" \
      ./target/release/backfeed --config "$WORK/b.toml" import "$WORK/history.json" --format webmention.io >/dev/null
    rm -f "$WORK/history.json"
  fi
  read -r secs kb < "$WORK/time.txt"
  RUST_LOG=backfeed=warn ./target/release/backfeed --config "$WORK/b.toml" serve 2>"$WORK/serve.log" &
  pid=$!
  until curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null; do sleep 0.1; done
  local base="http://127.0.0.1:$PORT"
  local target="https%3A%2F%2Fblog.example%2Fposts%2F7%2F"
  local etag
  echo "== $n published mentions (imported in $secs s, peak RSS $((kb / 1024)) MB)"
  # /mentions.css first: a static answer through the same server and layers, no store — the
  # floor a 304 is measured against on the same machine in the same run.
  local routes=("/mentions.css (floor)" "/mentions.atom" "/mentions.atom?target=$target" "/api/mentions.jf2?target=$target&per-page=20"
                "/api/count.json?target=$target" "/mentions.atom (304)")
  [[ -n "${MILLION:-}" ]] && routes+=("/mentions.atom?target=$target (304)" "/api/mentions.jf2?per-page=20"
    "/api/mentions.jf2?per-page=20&page=500" "/api/mentions.jf2?target=$target&per-page=20&page=500"
    "/mentions.jf2?target=$target" "/mentions.json?target=$target")
  for route in "${routes[@]}"; do
    local url="$base${route% (*)}" header=()
    if [[ "$route" == *"(304)"* ]]; then
      etag=$(curl -sI "$url" | tr -d '\r' | awk -F': ' 'tolower($1)=="etag"{print $2}')
      header=(-H "If-None-Match: $etag")
    fi
    wrk -t2 -c8 -d5s --latency "${header[@]}" "$url" > "$WORK/wrk.txt"
    printf "  %-48s %s  p50 %s  p99 %s\n" "$route" \
      "$(awk '/Requests\/sec/{print $2 " req/s"}' "$WORK/wrk.txt")" \
      "$(awk '$1=="50%"{print $2}' "$WORK/wrk.txt")" "$(awk '$1=="99%"{print $2}' "$WORK/wrk.txt")"
  done
  [[ -n "${MILLION:-}" ]] && operators_pages "$base" "$target"
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
  if [[ -n "${MILLION:-}" && "${EXPORTS:-1}" != 0 ]]; then
    # The exports stream: their peak memory does not grow with the store.
    for export in "--format jsonl --out $WORK/backup.jsonl" "--out $WORK/site"; do
      # shellcheck disable=SC2086
      /usr/bin/time -f "%e %M" -o "$WORK/time.txt" ./target/release/backfeed --config "$WORK/b.toml" export $export >/dev/null
      read -r secs kb < "$WORK/time.txt"
      printf "  export %-46s %s s, peak RSS %s MB\n" "${export%% $WORK*}" "$secs" "$((kb / 1024))"
    done
    rm -rf "$WORK/backup.jsonl" "$WORK/site"
  fi
}
for n in $SIZES; do measure "$n"; done
