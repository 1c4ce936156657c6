#!/usr/bin/env bash
# `bash benches/import.sh [N]`: imports N (default 100,000) webmention.io entries into an empty
# store (one transaction), then the same file again (all merged), then backs the store up as
# JSONL and restores it into another empty store; prints the wall time and peak RSS of each.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
[[ -n "${NOBUILD:-}" ]] || cargo build --release --quiet
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
python3 - "$N" "$WORK/history.json" <<'PY'
import json, sys
n, path = int(sys.argv[1]), sys.argv[2]
types = ["like-of", "in-reply-to", "repost-of", "bookmark-of", "mention-of"]
with open(path, "w") as f:
    f.write('{"type":"feed","name":"Webmentions","children":[')
    for i in range(n):
        target = f"https://blog.example/{2010 + i % 15}/post-{i % 2000}/"
        entry = {"type": "entry", "author": {"type": "card", "name": f"Author {i}", "photo": "", "url": f"https://site{i % 5000}.example/"},
                 "url": f"https://site{i % 5000}.example/posts/{i}", "published": "2023-04-01T10:00:00Z",
                 "wm-received": "2023-04-01T10:05:00Z", "wm-id": i, "wm-source": f"https://site{i % 5000}.example/posts/{i}",
                 "wm-target": target, "wm-property": types[i % 5],
                 "content": {"text": "A reply with a few words in it, as replies have.", "html": "<p>A reply with a <em>few</em> words in it.</p>"}}
        f.write(("," if i else "") + json.dumps(entry))
    f.write("]}")
PY
for store in a b; do
  cat > "$WORK/$store.toml" <<TOML
[site]
base_url = "https://blog.example/"
[store]
path = "$WORK/$store.db"
TOML
done
run() {
  local what=$1; shift
  /usr/bin/time -f "%e %M" -o "$WORK/time.txt" ./target/release/backfeed "$@" > "$WORK/out.txt"
  read -r secs kb < "$WORK/time.txt"
  echo "$what: ${secs} s wall, peak RSS $((kb / 1024)) MB — $(head -1 "$WORK/out.txt")"
}
echo "$N webmention.io entries ($(du -h "$WORK/history.json" | cut -f1))"
run "import" --config "$WORK/a.toml" import "$WORK/history.json" --format webmention.io
run "import again" --config "$WORK/a.toml" import "$WORK/history.json" --format webmention.io
run "backup (jsonl)" --config "$WORK/a.toml" export --format jsonl --out "$WORK/backup.jsonl"
run "restore (jsonl)" --config "$WORK/b.toml" import "$WORK/backup.jsonl"
