#!/usr/bin/env bash
# `bash benches/publish.sh`: the publishing routes at 1,000 and at 100,000 published mentions
# (600 bytes of content each, over 2,000 posts), filled through `backfeed import`; wrk runs each
# route for 5 s on 8 connections and prints p50 / p99, and a 304 for the feed.
# STORE=postgres: on PostgreSQL (benches/store.sh). VIRAL=1: a third of the mentions are of one
# post (the one the per-post routes ask for), as when a post goes viral.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { apt-get install -y -qq wrk >/dev/null; }
[[ -n "${NOBUILD:-}" ]] || cargo build --release --quiet
WORK=$(mktemp -d)
PORT=${BACKFEED_PORT:-18091}
source benches/store.sh
cleanup() { [[ -n "${pid:-}" ]] && kill "$pid" 2>/dev/null; store_drop; rm -rf "$WORK"; }
trap cleanup EXIT
fill() {
  python3 - "$1" "$WORK/history.json" "${VIRAL:-0}" <<'PY'
import json, sys
n, path, viral = int(sys.argv[1]), sys.argv[2], sys.argv[3] == "1"
types = ["like-of", "in-reply-to", "repost-of", "bookmark-of", "mention-of"]
words = ("A reply with words in it, as replies have, long enough to be a real one. " * 8)[:560]
with open(path, "w") as f:
    f.write('{"type":"feed","children":[')
    for i in range(n):
        target = f"https://blog.example/posts/{7 if viral and i % 3 == 0 else i % 2000}/"
        entry = {"type": "entry", "author": {"type": "card", "name": f"Author {i}", "url": f"https://site{i % 5000}.example/"},
                 "published": f"2023-{1 + i % 12:02d}-01T10:00:00Z", "wm-received": f"2023-{1 + i % 12:02d}-02T10:00:00Z",
                 "wm-source": f"https://site{i % 5000}.example/posts/{i}", "wm-target": target, "wm-property": types[i % 5],
                 "content": {"text": words, "html": f"<p>{words}</p>"}}
        f.write(("," if i else "") + json.dumps(entry))
    f.write("]}")
PY
}
measure() {
  local n=$1
  store_reset "$WORK/b.db"
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
TOML
  fill "$n"
  ./target/release/backfeed --config "$WORK/b.toml" import "$WORK/history.json" --format webmention.io >/dev/null
  RUST_LOG=backfeed=warn ./target/release/backfeed --config "$WORK/b.toml" serve 2>"$WORK/serve.log" &
  pid=$!
  until curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null; do sleep 0.1; done
  local base="http://127.0.0.1:$PORT"
  local target="https%3A%2F%2Fblog.example%2Fposts%2F7%2F"
  local etag
  etag=$(curl -sI "$base/mentions.atom" | tr -d '\r' | awk -F': ' 'tolower($1)=="etag"{print $2}')
  echo "== $n published mentions"
  for route in "/mentions.atom" "/mentions.atom?target=$target" "/api/mentions.jf2?target=$target&per-page=20" \
               "/api/count.json?target=$target" "/mentions.atom (304)"; do
    local url="$base${route% (304)}" header=()
    [[ "$route" == *"(304)"* ]] && header=(-H "If-None-Match: $etag")
    wrk -t2 -c8 -d5s --latency "${header[@]}" "$url" > "$WORK/wrk.txt"
    printf "  %-48s %s  p50 %s  p99 %s\n" "$route" \
      "$(awk '/Requests\/sec/{print $2 " req/s"}' "$WORK/wrk.txt")" \
      "$(awk '$1=="50%"{print $2}' "$WORK/wrk.txt")" "$(awk '$1=="99%"{print $2}' "$WORK/wrk.txt")"
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
}
measure 1000
measure 100000
