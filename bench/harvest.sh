#!/usr/bin/env bash
# harvest.sh — what harvest traps cost the web server: requests/s for one static HTML page
# served by two sekisho processes started side by side, one with [web] decoy_seed (every
# page seeded with the visitor's trap link) and one without, measured in the same run.
#
# Usage:  bench/harvest.sh
#         REPS=5 WRK_DURATION=20 PAGE_KB=30 bench/harvest.sh
# Env (defaults): SEEDED_PORT=28290 PLAIN_PORT=28291 REPS=3 WRK_THREADS=2 WRK_CONNS=64
#   WRK_DURATION=10 WARMUP_S=2 PAGE_KB=10 GZIP=false (true: wrk sends Accept-Encoding:
#   gzip, so both compress the page) SEKISHO_BIN KEEP_WORK=0
# Both listen on plain HTTP (a route with plain = "serve"), log level warn, SQLite store.
# wrk runs from 127.0.0.1 only: one visitor, so after the first request the seeded server
# takes its address from memory, as it does for every later page view of a visitor.
# Runs are interleaved (rep 1 of both, then rep 2, ...) to spread machine noise. Output: one
# line per run and the mean requests/s of each with their ratio (target: seeded >= 0.8x).
# Stops exactly the processes it started.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
SEEDED_PORT=${SEEDED_PORT:-28290}
PLAIN_PORT=${PLAIN_PORT:-28291}
REPS=${REPS:-3}
WRK_THREADS=${WRK_THREADS:-2}
WRK_CONNS=${WRK_CONNS:-64}
WRK_DURATION=${WRK_DURATION:-10}
WARMUP_S=${WARMUP_S:-2}
PAGE_KB=${PAGE_KB:-10}
GZIP=${GZIP:-false}
source "$(dirname "$0")/common.sh" sekisho-harvest

need wrk wrk
need curl curl
for p in "$SEEDED_PORT" "$PLAIN_PORT"; do port_busy "$p" && die "port $p in use"; done

build_sekisho

# The page: a head, paragraphs up to PAGE_KB, a footer.
mkdir -p "$WORK/www"
{
  printf '<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>bench</title></head>\n<body>\n<h1>Harvest bench</h1>\n'
  para='<p>Spammers harvest addresses from web pages; only a server that is also the MX can close the loop.</p>'
  for ((i = 0; i < PAGE_KB * 1024 / ${#para}; i++)); do echo "$para"; done
  printf '<footer>sekisho</footer>\n</body>\n</html>\n'
} >"$WORK/www/index.html"

# start NAME PORT SEED — a sekisho serving $WORK/www on 127.0.0.1:PORT, seeded when SEED.
start() {
  local name=$1 port=$2 seed=$3 d=$WORK/$1
  mkdir -p "$d/data"
  cat >"$d/sekisho.toml" <<EOF
hostname = "mx.bench.test"
data_dir = "$d/data"

[log]
level = "warn"

[smtp]
local_domains = ["bench.test"]

[smtp.upstream]
servers = ["127.0.0.1:9"] # never used: the web server's confirm page needs one configured

[web]
listen_plain = ["127.0.0.1:$port"]
decoy_seed = "$seed"

[[web.route]]
host = "www.bench.test"
root = "$WORK/www"
plain = "serve"
EOF
  "$SEKISHO" serve -config "$d/sekisho.toml" >"$d/log" 2>&1 &
  PIDS+=($!)
  wait_port "$port" $! 20 || { cat "$d/log" >&2; die "$name did not start"; }
}
start seeded "$SEEDED_PORT" bench.test
start plain "$PLAIN_PORT" ""

hdr=(-H "Host: www.bench.test")
[ "$GZIP" = true ] && hdr+=(-H "Accept-Encoding: gzip")

# Correctness first: the seeded page has the link, the plain one not, both 200.
seeded_body=$(curl -sS "${hdr[@]}" --compressed "http://127.0.0.1:$SEEDED_PORT/")
plain_body=$(curl -sS "${hdr[@]}" --compressed "http://127.0.0.1:$PLAIN_PORT/")
grep -q 'href="mailto:[a-z2-7]\{16\}@bench.test" hidden' <<<"$seeded_body" || die "seeded page has no trap link"
grep -q 'mailto:' <<<"$plain_body" && die "plain page has a trap link"
log "page $(wc -c <"$WORK/www/index.html") bytes; seeded +$((${#seeded_body} - ${#plain_body})) bytes; gzip=$GZIP"

run() { # run NAME PORT DURATION -> requests/s
  local out
  out=$(wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d"$3s" "${hdr[@]}" "http://127.0.0.1:$2/")
  if grep -q 'Non-2xx\|Socket errors' <<<"$out"; then log "$1: errors in run"; echo "$out" >&2; fi
  awk '/^Requests\/sec:/ {print $2}' <<<"$out"
}

run seeded "$SEEDED_PORT" "$WARMUP_S" >/dev/null
run plain "$PLAIN_PORT" "$WARMUP_S" >/dev/null
declare -A sum=([seeded]=0 [plain]=0)
for ((rep = 1; rep <= REPS; rep++)); do
  for t in seeded plain; do
    port=$PLAIN_PORT
    [ $t = seeded ] && port=$SEEDED_PORT
    rps=$(run $t "$port" "$WRK_DURATION")
    printf '%-7s rep %d  %10.0f req/s\n' "$t" "$rep" "$rps"
    sum[$t]=$(awk -v a="${sum[$t]}" -v b="$rps" 'BEGIN {print a + b}')
  done
done
awk -v s="${sum[seeded]}" -v p="${sum[plain]}" -v n="$REPS" -v kb="$PAGE_KB" -v gz="$GZIP" 'BEGIN {
  printf "mean    seeded %.0f req/s, plain %.0f req/s: seeded/plain = %.2f  (page %d KiB, gzip %s)\n", s / n, p / n, s / p, kb, gz
}'
