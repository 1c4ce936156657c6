# Sourced by the benchmark scripts: the store a benchmark runs on.
#   STORE=sqlite (default)  a SQLite file in $WORK
#   STORE=postgres          a new database on $BENCH_DATABASE_URL (default
#                           postgres://postgres@127.0.0.1:5432/test), dropped at exit
#                           unless KEEP_DB=1 (to look at it afterwards)
# store_section FILE: the [store] keys for the config; store_sql FILE SQL: plain SQL on the
# store; store_reset FILE: an empty store again; store_drop: removes a PostgreSQL database.
STORE=${STORE:-sqlite}
BENCH_DATABASE_URL=${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}
BENCH_DB=""
store_section() {
  if [[ "$STORE" == postgres ]]; then
    printf 'url_env = "BACKFEED_DATABASE_URL"\npool_size = %s\n' "${POOL_SIZE:-16}"
  else
    printf 'path = "%s"\n' "$1"
  fi
}
store_drop() {
  [[ -n "${KEEP_DB:-}" && -n "$BENCH_DB" ]] && { echo "kept database $BENCH_DB" >&2; BENCH_DB=""; }
  [[ -n "$BENCH_DB" ]] && psql "$BENCH_DATABASE_URL" -qc "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)" >/dev/null
  BENCH_DB=""
}
store_reset() {
  if [[ "$STORE" == postgres ]]; then
    store_drop
    BENCH_DB="backfeed_bench_$$_$RANDOM"
    psql "$BENCH_DATABASE_URL" -qc "CREATE DATABASE $BENCH_DB" >/dev/null
    export BACKFEED_DATABASE_URL="${BENCH_DATABASE_URL%/*}/$BENCH_DB"
  else
    rm -f "$1" "$1-wal" "$1-shm"
  fi
}
store_sql() {
  if [[ "$STORE" == postgres ]]; then
    psql "$BACKFEED_DATABASE_URL" -qAtc "$2"
  else
    command -v sqlite3 >/dev/null || { apt-get update -qq && apt-get install -y -qq sqlite3 >/dev/null; }
    sqlite3 "$1" "$2"
  fi
}
