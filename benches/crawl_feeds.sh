#!/usr/bin/env bash
# Crawl benchmark (issue 4): 1,000 watched RSS feeds of 20 items each, served by nginx from 50
# loopback hosts, every item linking to the post (20,000 candidates, each verified by fetching
# its permalink page). Reports wall time, requests and peak RSS for the first crawl and for the
# second, where every feed answers 304 and no item is looked at again.
# Goals: first crawl ≤ 60 s; second ≤ 5 s; peak RSS ≤ 150 MB.
#   bash benches/crawl_feeds.sh          (FEEDS=1000 ITEMS=20 HOSTS=50)
set -euo pipefail
cd "$(dirname "$0")/.."
FEEDS=${FEEDS:-1000}
ITEMS=${ITEMS:-20}
HOSTS=${HOSTS:-50}
cargo build --release --quiet --bin backfeed
source benches/loopback-web.sh
# Count requests: switch nginx's access log on for this run.
sed -i "s|access_log off;|access_log $WORK/access.log;|" "$WORK/nginx.conf"
nginx -c "$WORK/nginx.conf" -s reload
python3 - "$WORK" "$FEEDS" "$ITEMS" "$HOSTS" "$WEB_PORT" <<'PY'
import sys, os
work, feeds, items, hosts, port = sys.argv[1], *map(int, sys.argv[2:])
post = f"http://127.0.0.1:{port}/blog/2024/hello/"
watches = []
for f in range(feeds):
    host = f"127.0.0.{f % hosts + 2}:{port}"
    entries = "".join(
        f"<item><title>Item {i}</title><link>http://{host}/p/f{f}-i{i}.html</link><guid>f{f}-i{i}</guid>"
        f"<description>&lt;p&gt;I liked &lt;a href=\"{post}\"&gt;this post&lt;/a&gt;.&lt;/p&gt;</description></item>"
        for i in range(items))
    open(f"{work}/www/feeds/{f}.xml", "w").write(
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>Feed {f}</title><link>http://{host}/</link><description>d</description>{entries}</channel></rss>')
    watches.append(f'[[watch]]\nurl = "http://{host}/feeds/{f}.xml"\nkind = "feed"\n')
open(f"{work}/watches.toml", "w").write("\n".join(watches))
PY
write_backfeed_config "$(printf '[fetch]\nallow_private_addresses = true\nconcurrency = 32\nper_host = 2\nper_host_per_minute = 0\n\n%s' "$(cat "$WORK/watches.toml")")"
run_crawl() {
  : > "$WORK/access.log"
  /usr/bin/time -f "%e %M" -o "$WORK/time.txt" ./target/release/backfeed --config "$WORK/backfeed.toml" crawl 2>/dev/null
  read -r secs kb < "$WORK/time.txt"
  echo "  $1: ${secs} s wall, $(wc -l < "$WORK/access.log") requests ($(grep -c '" 304 ' "$WORK/access.log" || true) answered 304), peak RSS $((kb / 1024)) MB"
}
echo "== $FEEDS feeds × $ITEMS items on $HOSTS hosts"
run_crawl "first crawl "
run_crawl "second crawl"
