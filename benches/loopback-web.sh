# Sourced by the benchmark scripts: serves a fixture web from nginx on port $WEB_PORT, reachable
# at every loopback address (127.0.0.2, 127.0.0.3, … are "many hosts"), out of $WORK/www.
#   /blog/feed.xml           the site's own feed (one post: /blog/2024/hello/)
#   /blog/2024/hello/        the post
#   /p/<anything>            a 30 KB blog page that links to the post
# Needs nginx (Debian: nginx-light); installs it when missing. The store: see benches/store.sh
# (STORE=postgres).
set -euo pipefail
WEB_PORT=${WEB_PORT:-18080}
WORK=${WORK:-$(mktemp -d /tmp/backfeed-bench.XXXXXX)}
command -v nginx >/dev/null || { apt-get update -qq && apt-get install -y -qq nginx-light >/dev/null; }
mkdir -p "$WORK/www/blog/2024/hello" "$WORK/www/feeds"
chmod 755 "$WORK"  # nginx workers run as nobody
POST="http://127.0.0.1:$WEB_PORT/blog/2024/hello/"
cat > "$WORK/www/blog/feed.xml" <<XML
<?xml version="1.0"?><rss version="2.0"><channel><title>Bench blog</title><link>http://127.0.0.1:$WEB_PORT/blog/</link><description>d</description>
<item><title>Hello</title><link>$POST</link><guid>$POST</guid></item></channel></rss>
XML
echo "<title>Hello</title><p>The post.</p>" > "$WORK/www/blog/2024/hello/index.html"
# ARTICLE=1: a typical IndieWeb page instead, the whole 40 KB article (about 160 links, one to the
# post) inside the h-entry's e-content. PAGE=wordpress or PAGE=comments: one of the fixtures in
# benches/fixtures/ (an 87 KB WordPress post page with 346 links and 31 comments; a 54 KB
# IndieWeb post with 60 likes/reposts and 45 replies as h-cite), linking to the post.
python3 - "$WORK/www/page.html" "$POST" "${ARTICLE:-0}" "${PAGE:-}" <<'PY'
import sys
out, post, article, fixture = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4]
if fixture:
    page = open(f"benches/fixtures/{fixture}.html").read().replace("{{TARGET}}", post)
    open(out, "w").write(page)
    sys.exit(0)
if article:
    parts = []
    i = 0
    while sum(map(len, parts)) < 38500:
        parts.append(f'<p>Paragraph {i} of the article, with <em>emphasis</em> and <a href="https://ref{i % 40}.example/notes/{i}">a reference</a>; more words follow here, as articles have them.</p>\n')
        if i == 20:
            parts.append(f'<p>As <a href="{post}">Bob wrote</a>, this matters.</p>\n')
        i += 1
    page = ('<!doctype html><html><head><meta charset="utf-8"><title>An article</title></head><body>'
            '<header><nav><a href="/">Home</a></nav></header><article class="h-entry"><h1 class="p-name">An article</h1>'
            '<a class="p-author h-card" href="https://alice.example/">Alice</a><div class="e-content">'
            + "".join(parts) + '</div></article></body></html>')
    open(out, "w").write(page)
    sys.exit(0)
parts = ['<!doctype html><html><head><meta charset="utf-8"><title>A page about things</title></head><body><main>']
i = 0
while sum(map(len, parts)) < 29000:
    parts.append(f'<p>Paragraph {i} with some <em>emphasis</em>, a <a href="https://other{i}.example/p/{i}">link elsewhere</a> and plain words that make up the bulk of an article.</p>\n')
    i += 1
parts.append(f'<article class="h-entry"><p class="e-content">Read <a href="{post}">this post</a>.</p></article></main></body></html>')
open(out, "w").write("".join(parts))
PY
cat > "$WORK/nginx.conf" <<CONF
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 100000;
  types { text/html html; application/rss+xml xml; }
  server {
    listen $WEB_PORT backlog=4096;
    root $WORK/www;
    location /p/ { default_type text/html; try_files /page.html =404; }
  }
}
CONF
nginx -c "$WORK/nginx.conf"
source benches/store.sh
store_reset "$WORK/backfeed.db"
trap 'nginx -c "$WORK/nginx.conf" -s stop 2>/dev/null || true; store_drop' EXIT
# Writes a backfeed config for this web to $WORK/backfeed.toml; extra TOML from $1.
write_backfeed_config() {
  { cat <<TOML
[site]
base_url = "http://127.0.0.1:$WEB_PORT/blog/"
feeds = ["http://127.0.0.1:$WEB_PORT/blog/feed.xml"]
TOML
    server_config "${1:-}"; } > "$WORK/backfeed.toml"
}
# The config's parts besides its sites: the store, the server (no rate limits), the schedules
# off (runs are started by hand); extra TOML from $1.
server_config() {
  cat <<TOML
[store]
$(store_section "$WORK/backfeed.db")
[server]
listen = "127.0.0.1:${BACKFEED_PORT:-18090}"
metrics_listen = ""
public_url = "http://127.0.0.1:${BACKFEED_PORT:-18090}/"
rate_limit_per_client = 0
rate_limit_per_source_host = 0
max_connections_per_client = 0
[schedule]
crawl = "0 0 0 1 1 *"
reverify = "0 0 0 1 1 *"
${1:-}
TOML
}
# Peak resident memory of a process, in MB.
peak_rss_mb() { awk '/VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }
