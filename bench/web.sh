#!/usr/bin/env bash
# web.sh — sekisho's reverse proxy and forward proxy as the candidate of the shared peer
# benchmarks: ../shared/bench/http.sh (wrk -> proxy -> nginx backend; direct, nginx, Caddy)
# and ../shared/bench/fwdproxy.sh (direct, Squid, tinyproxy; keep-alive, a new connection
# per request, CONNECT bulk), in the same run as the peers.
#
# Usage:  bench/web.sh                           # both scripts
#         SCRIPTS=http bench/web.sh              # only the reverse proxy
#         SCRIPTS=fwdproxy MODES=connect TARGETS=direct bench/web.sh
#
# sekisho runs as in production: log level "info" (one access line per request), the
# reverse-proxy route host "127.0.0.1" on a plain listener (plain = "serve") to the nginx
# backend, the forward proxy with CONNECT allowed only to the backend's port and the
# loopback destination allowed (deny_networks = []). Everything else the shared scripts
# take (REPS, TARGETS, FILES, MODES, WRK_*, ...) is passed through unchanged.
#
# Env (defaults): SCRIPTS="http fwdproxy" BACKEND_PORT=28080 WEB_PORT=28090
#   PROXY_PORT=28091 SEKISHO_BIN (default: go build ./cmd/sekisho)
#   SHARED_BENCH=<repo>/../shared/bench  KEEP_WORK=0
# Needs root (the shared scripts install nginx, caddy, squid, tinyproxy, wrk, ab).
#
# To read the figures against what Go allows on the machine, run bench/goceiling (the least
# a Go reverse proxy can do: net/http's parsers, no checks, no log unless -log) beside the
# backend and point wrk at it in the same session:
#   go run ./bench/goceiling -listen 127.0.0.1:28095 -backend 127.0.0.1:28080
#   wrk -t2 -c64 -d10s http://127.0.0.1:28095/1k.bin
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
SHARED_BENCH=${SHARED_BENCH:-$(cd "$REPO/.." && pwd)/shared/bench}
SCRIPTS=${SCRIPTS:-"http fwdproxy"}
export BACKEND_PORT=${BACKEND_PORT:-28080}
WEB_PORT=${WEB_PORT:-28090}
PROXY_PORT=${PROXY_PORT:-28091}
source "$(dirname "$0")/common.sh" sekisho-web-bench
[ -d "$SHARED_BENCH" ] || die "shared benchmarks not found at $SHARED_BENCH"

build_sekisho

cat >"$WORK/sekisho.toml" <<CONF
hostname = "bench.test"
data_dir = "$WORK/data"

[log]
level = "info"

[smtp]
local_domains = ["bench.test"]

[smtp.upstream]
servers = ["127.0.0.1:25"]

[web]
listen = []
listen_plain = ["127.0.0.1:$WEB_PORT"]

[[web.route]]
host = "127.0.0.1"
path = "/"
upstreams = ["127.0.0.1:$BACKEND_PORT"]
plain = "serve"

[http_proxy]
listen = ["127.0.0.1:$PROXY_PORT"]
allow_networks = ["127.0.0.0/8"]
connect_ports = [$BACKEND_PORT]
deny_networks = []
CONF
mkdir -p "$WORK/data"
"$SEKISHO" check -config "$WORK/sekisho.toml" >/dev/null || die "configuration refused"
"$SEKISHO" serve -config "$WORK/sekisho.toml" >"$WORK/sekisho.log" 2>&1 &
PIDS+=($!)
wait_port "$PROXY_PORT" "${PIDS[-1]}" 30 || { tail -20 "$WORK/sekisho.log" >&2; die "sekisho did not start"; }
log "sekisho pid ${PIDS[-1]}: reverse proxy 127.0.0.1:$WEB_PORT, forward proxy 127.0.0.1:$PROXY_PORT"

for s in $SCRIPTS; do
  case $s in
    http) CANDIDATE_HTTP=127.0.0.1:$WEB_PORT bash "$SHARED_BENCH/http.sh" ;;
    fwdproxy) CANDIDATE_FWD=127.0.0.1:$PROXY_PORT bash "$SHARED_BENCH/fwdproxy.sh" ;;
    *) die "unknown script $s (http or fwdproxy)" ;;
  esac
done
