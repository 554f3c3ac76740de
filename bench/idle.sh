#!/usr/bin/env bash
# idle.sh — what idle SMTP sessions cost sekisho: open $CONNS concurrent sessions (greeting
# read, EHLO said, then silence; bench/idleconns) and report sekisho's resident memory
# (VmRSS from /proc/PID/status) before, with every session open, and per session.
#
# Usage:  bench/idle.sh                 # CONNS=5000
#         CONNS=10000 EHLO=false bench/idle.sh
# Env (defaults): CONNS=5000 EHLO=true PORT=25270 UPSTREAM_PORT=25271 (nothing needs to
#   listen there: idle sessions never reach the upstream) SETTLE_S=2 SEKISHO_BIN KEEP_WORK=0
# sekisho's configuration is the one of bench/smtp.sh (log level info, relay_networks = []).
# Raises `ulimit -n` for itself and its children. Stops exactly the processes it started.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
CONNS=${CONNS:-5000}
EHLO=${EHLO:-true}
PORT=${PORT:-25270}
UPSTREAM_PORT=${UPSTREAM_PORT:-25271}
SETTLE_S=${SETTLE_S:-2}
source "$(dirname "$0")/common.sh" sekisho-idle
CLEANUP_HOOKS+=("exec 3>&- 2>/dev/null")

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
fds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }

# Each session is one descriptor in sekisho and one in idleconns, plus headroom.
want=$((CONNS + 1024))
if (($(ulimit -n) < want)); then
  ulimit -n "$want" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
fi
(($(ulimit -n) >= want)) || die "ulimit -n is $(ulimit -n), need $want (raise the hard limit)"
port_busy "$PORT" && die "port $PORT in use (set PORT)"

build_sekisho
(cd "$REPO" && go build -o "$WORK/idleconns" ./bench/idleconns) || die "go build idleconns failed"

mkdir -p "$WORK/data"
mx_config mx.bench.test "$WORK/data" "$PORT" "$UPSTREAM_PORT" >"$WORK/sekisho.toml"
"$SEKISHO" serve -config "$WORK/sekisho.toml" 2>"$WORK/sekisho.log" &
SPID=$!
PIDS+=("$SPID")
wait_port "$PORT" "$SPID" || { cat "$WORK/sekisho.log" >&2; die "sekisho did not come up on :$PORT"; }
sleep "$SETTLE_S"
rss0=$(rss_kb "$SPID")
log "sekisho pid $SPID on 127.0.0.1:$PORT, idle RSS ${rss0} kB; opening $CONNS sessions (ehlo=$EHLO, ulimit -n $(ulimit -n))"

# idleconns holds the sessions until its stdin (our fd 3) closes.
mkfifo "$WORK/hold"
"$WORK/idleconns" -addr "127.0.0.1:$PORT" -n "$CONNS" -ehlo="$EHLO" -stdin <"$WORK/hold" >"$WORK/idleconns.log" 2>&1 &
IPID=$!
PIDS+=("$IPID")
exec 3>"$WORK/hold"
for ((i = 0; i < 1200; i++)); do
  grep -q '^ready' "$WORK/idleconns.log" && break
  kill -0 "$IPID" 2>/dev/null || { cat "$WORK/idleconns.log" >&2; die "idleconns exited"; }
  sleep 0.1
done
grep -q '^ready' "$WORK/idleconns.log" || die "idleconns not ready after 120 s"
grep -q 'failed' "$WORK/idleconns.log" && log "WARNING: $(grep failed "$WORK/idleconns.log")"
sleep "$SETTLE_S"
rss1=$(rss_kb "$SPID")
fd1=$(fds "$SPID")
hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$SPID/status")
threads=$(awk '/^Threads/ {print $2}' "/proc/$SPID/status")
exec 3>&-   # idleconns says QUIT on every session and exits
wait "$IPID" 2>/dev/null || true
opened=$(awk '/^ready/ {print $2}' "$WORK/idleconns.log")

echo "# sekisho bench/idle.sh $(date +%Y%m%d-%H%M%S)  $(nproc) CPUs, ehlo=$EHLO"
echo "$(head -1 "$WORK/idleconns.log")"
printf '%-34s %s\n' "sessions open" "$opened (sekisho fds: $fd1, threads: $threads)"
printf '%-34s %s\n' "sekisho VmRSS before" "$rss0 kB"
printf '%-34s %s\n' "sekisho VmRSS with sessions open" "$rss1 kB  (VmHWM $hwm kB)"
printf '%-34s %s\n' "per idle session" "$(awk -v a="$rss0" -v b="$rss1" -v n="$opened" 'BEGIN{printf "%.1f kB", (b - a) / n}')"
