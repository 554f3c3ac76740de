#!/usr/bin/env bash
# smtp.sh — sekisho's SMTP throughput: smtp-source -> sekisho -> smtp-sink against
# smtp-source -> smtp-sink direct, in the same run; then (when ../shared/bench/smtp.sh is
# present next to this repository) sekisho as the candidate of the shared peer benchmark
# (direct, Haraka, Postfix relay).
#
# Usage:  bench/smtp.sh                       # both parts
#         PEERS=0 bench/smtp.sh               # only the direct-vs-sekisho comparison
#         OWN=0 TARGETS="direct postfix" bench/smtp.sh   # only the shared peer benchmark
#
# sekisho runs as in production for inbound mail: local_domains = ["bench.test"],
# relay_networks = [] (every client is an outside sender, so the policy really runs), the
# sender bench@sender.test whitelisted with `sekisho list add white`, log level "info",
# listener and upstream tls "none", max_recipients default. Each message: smtp-source -s
# $SESSIONS -m $MSGS -l SIZE -f bench@sender.test -t user@bench.test (one message per
# connection, the MX-like pattern). A run is timed from smtp-source's start until the sink
# has counted every message (smtp-sink -c); msg/s uses the message count, MB/s the payload
# size (-l) only. The ratio is sekisho / direct, medians over REPS interleaved runs.
#
# Env (defaults): SESSIONS=20 MSGS=5000 SIZES="10240 102400" REPS=3
#   OWN=1 PEERS=1 (which parts run)  SHARED_BENCH=<repo>/../shared/bench
#   SINK_PORT=25260 SEKISHO_PORT=25261 (own comparison)
#   PEER_SINK_PORT=25250 PEER_SEKISHO_PORT=25262 (shared benchmark; its SINK_PORT)
#   TARGETS, HARAKA_NODES, ... are passed to the shared script unchanged.
#   SEKISHO_BIN (default: go build ./cmd/sekisho)  RUN_TIMEOUT=300 STALL_S=15
#   RESULTS_DIR=${TMPDIR:-/tmp}/sekisho-bench-results  KEEP_WORK=0
# Needs: smtp-source, smtp-sink (Debian postfix), swaks; root only for the shared part
# (it installs what it misses). Stops exactly the processes it started.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
SHARED_BENCH=${SHARED_BENCH:-$(cd "$REPO/.." && pwd)/shared/bench}
SESSIONS=${SESSIONS:-20}
MSGS=${MSGS:-5000}
SIZES=${SIZES:-"10240 102400"}
REPS=${REPS:-3}
OWN=${OWN:-1}
PEERS=${PEERS:-1}
SINK_PORT_OWN=${SINK_PORT:-25260}
SEKISHO_PORT=${SEKISHO_PORT:-25261}
PEER_SINK_PORT=${PEER_SINK_PORT:-25250}
PEER_SEKISHO_PORT=${PEER_SEKISHO_PORT:-25262}
RUN_TIMEOUT=${RUN_TIMEOUT:-300}
STALL_S=${STALL_S:-15}
RESULTS_DIR=${RESULTS_DIR:-${TMPDIR:-/tmp}/sekisho-bench-results}
STAMP=$(date +%Y%m%d-%H%M%S)
RAW=$RESULTS_DIR/sekisho-smtp-$STAMP.tsv
mkdir -p "$RESULTS_DIR"
: >"$RAW"
source "$(dirname "$0")/common.sh" sekisho-bench
need smtp-source postfix; need smtp-sink postfix; need swaks swaks

# ---------------------------------------------------------------- sekisho
build_sekisho

# sekisho_start NAME PORT UPSTREAM_PORT [SENDER...] — a fresh data dir, bench@sender.test
# (and SENDERs) whitelisted, serving.
sekisho_start() {
  local name=$1 port=$2 up=$3 d=$WORK/$1 w
  shift 3
  mkdir -p "$d/data"
  mx_config mx.bench.test "$d/data" "$port" "$up" >"$d/sekisho.toml"
  "$SEKISHO" check -config "$d/sekisho.toml" >/dev/null || die "sekisho check failed"
  for w in bench@sender.test "$@"; do
    "$SEKISHO" list add white "$w" -config "$d/sekisho.toml" >/dev/null || die "sekisho list add white $w failed"
  done
  "$SEKISHO" serve -config "$d/sekisho.toml" 2>"$d/sekisho.log" &
  SEKISHO_PID=$!
  PIDS+=("$SEKISHO_PID")
  wait_port "$port" "$SEKISHO_PID" || { cat "$d/sekisho.log" >&2; die "sekisho did not come up on :$port"; }
  log "started sekisho $name (pid $SEKISHO_PID) on 127.0.0.1:$port -> 127.0.0.1:$up"
}

# run_one TARGET PORT SIZE REP — prints msg/s
run_one() {
  local target=$1 port=$2 size=$3 rep=$4 before after t0 t1 t2 rc=0
  before=$(sink_count)
  t0=$(now)
  timeout "$RUN_TIMEOUT" smtp-source -s "$SESSIONS" -m "$MSGS" -l "$size" \
    -f bench@sender.test -t user@bench.test -M client.bench.test "inet:127.0.0.1:$port" >"$WORK/source.log" 2>&1 || rc=$?
  t1=$(now)
  after=$(sink_wait "$before")
  t2=$(now)
  local got=$((after - before))
  local e2e acc rate mbs
  e2e=$(awk -v a="$t0" -v b="$t2" 'BEGIN{printf "%.3f", b - a}')
  acc=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b - a}')
  rate=$(awk -v m="$got" -v s="$e2e" 'BEGIN{printf "%.1f", m / s}')
  mbs=$(awk -v m="$got" -v z="$size" -v s="$e2e" 'BEGIN{printf "%.2f", m * z / 1e6 / s}')
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$target" "$size" "$rep" "$rate" "$mbs" "$e2e" "$acc" "$got" >>"$RAW"
  local note=""
  ((rc != 0)) && note=" smtp-source rc=$rc: $(tail -2 "$WORK/source.log" | tr '\n' ' ')"
  ((got < MSGS)) && note="$note SINK GOT ONLY $got/$MSGS"
  log "  $target ${size}B rep$rep: $rate msg/s ($mbs MB/s), e2e ${e2e}s, accept ${acc}s$note"
}

# ---------------------------------------------------------------- own comparison
own_comparison() {
  for p in "$SINK_PORT_OWN" "$SEKISHO_PORT"; do port_busy "$p" && die "port $p in use (set SINK_PORT / SEKISHO_PORT)"; done
  sink_start "$SINK_PORT_OWN"
  sekisho_start own "$SEKISHO_PORT" "$SINK_PORT_OWN"
  smoke "$SEKISHO_PORT"
  log "direct vs sekisho: sessions=$SESSIONS msgs=$MSGS sizes=($SIZES) reps=$REPS"
  local size rep
  for size in $SIZES; do
    for ((rep = 1; rep <= REPS; rep++)); do   # interleaved: both see the same noise
      run_one direct "$SINK_PORT_OWN" "$size" "$rep"
      run_one sekisho "$SEKISHO_PORT" "$size" "$rep"
    done
  done
  local rss
  rss=$(awk '/^VmHWM/ {print $2, $3}' "/proc/$SEKISHO_PID/status" 2>/dev/null || echo n/a)
  stop_pid "$SEKISHO_PID"
  stop_pid "$SINK_PID"
  {
    echo "# sekisho bench/smtp.sh $STAMP  sessions=$SESSIONS msgs=$MSGS reps=$REPS  ($(nproc) CPUs, postfix $(dpkg-query -W -f='${Version}' postfix 2>/dev/null || echo '?'))"
    echo "# e2e = smtp-source start until smtp-sink counted every message; median of $REPS (min-max)"
    awk -F'\t' "$AWK_MEDIAN"'
      { k = $1 SUBSEP $2; n[k]++; v[k, n[k]] = $4; mb[k, n[k]] = $5; sizes[$2] = 1; got[k] += $8 }
      END {
        printf "%-8s  %-24s  %-24s  %s\n", "size", "direct msg/s (MB/s)", "sekisho msg/s (MB/s)", "sekisho/direct"
        for (s in sizes) {
          d = med("direct" SUBSEP s, v); dlo = lo; dhi = hi; dm = med("direct" SUBSEP s, mb)
          x = med("sekisho" SUBSEP s, v); xlo = lo; xhi = hi; xm = med("sekisho" SUBSEP s, mb)
          printf "%-8s  %-24s  %-24s  %.2f\n", s "B", sprintf("%.0f (%.1f) [%.0f-%.0f]", d, dm, dlo, dhi),
            sprintf("%.0f (%.1f) [%.0f-%.0f]", x, xm, xlo, xhi), (d > 0 ? x / d : 0)
        }
      }' "$RAW" | sort -n
    echo "# sekisho peak RSS (VmHWM): $rss; raw samples: $RAW"
  } | tee "${RAW%.tsv}.txt"
}

# ---------------------------------------------------------------- shared peer benchmark
peer_benchmark() {
  if [ ! -f "$SHARED_BENCH/smtp.sh" ]; then
    log "no $SHARED_BENCH/smtp.sh: shared peer benchmark skipped"
    return 0
  fi
  port_busy "$PEER_SEKISHO_PORT" && die "port $PEER_SEKISHO_PORT in use (set PEER_SEKISHO_PORT)"
  # sekisho forwards to the shared script's sink, which that script starts (and stops).
  # Its smoke test sends from smoke@sender.test: whitelisted too, or it would be held.
  sekisho_start peer "$PEER_SEKISHO_PORT" "$PEER_SINK_PORT" smoke@sender.test
  log "running $SHARED_BENCH/smtp.sh with CANDIDATE_SMTP=127.0.0.1:$PEER_SEKISHO_PORT"
  SINK_PORT=$PEER_SINK_PORT CANDIDATE_SMTP=127.0.0.1:$PEER_SEKISHO_PORT \
    SESSIONS=$SESSIONS MSGS=$MSGS SIZES=$SIZES REPS=$REPS bash "$SHARED_BENCH/smtp.sh"
  stop_pid "$SEKISHO_PID"
}

if [ "$OWN" = 1 ]; then own_comparison; fi
if [ "$PEERS" = 1 ]; then peer_benchmark; fi
