# common.sh — helpers shared by bench/{smtp,cluster,idle,harvest,web}.sh. Sourced, not run.
# It makes the work directory $WORK (prefix $1), keeps the PIDs of what a script starts in
# PIDS (stopped in reverse order at exit), runs CLEANUP_HOOKS before the work directory
# goes, and keeps the directory when KEEP_WORK=1 or the script failed.
WORK=$(mktemp -d "/tmp/${1:-sekisho-bench}-XXXXXX")
chmod 755 "$WORK"
PIDS=()
CLEANUP_HOOKS=()
PATH=$PATH:/usr/sbin:/sbin

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "FATAL: $*"; exit 1; }
now() { date +%s.%N; }

# stop_pid PID — TERM, up to 35 s (sekisho's grace is 30 s), then KILL. Only our PIDs.
stop_pid() {
  local pid=$1 i
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 350; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$? i h
  set +e
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${PIDS[i]}"; done
  for h in "${CLEANUP_HOOKS[@]}"; do eval "$h"; done
  if [ "${KEEP_WORK:-0}" = 1 ] || [ $rc -ne 0 ]; then log "work dir kept: $WORK"; else rm -rf "$WORK"; fi
  return $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_busy() { ss -Htln "sport = :$1" 2>/dev/null | grep -q .; }

# need CMD PACKAGE — fail naming the Debian package when CMD is missing.
need() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || die "$1 missing (Debian package $2)"; }

# wait_port PORT PID [TIMEOUT_S] — until 127.0.0.1:PORT accepts; fails early when PID died.
wait_port() {
  local i
  for ((i = 0; i < ${3:-20} * 10; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# build_sekisho — sets SEKISHO: SEKISHO_BIN when set, else ./cmd/sekisho of $REPO built into $WORK.
build_sekisho() {
  SEKISHO=${SEKISHO_BIN:-}
  [ -n "$SEKISHO" ] && return 0
  SEKISHO=$WORK/sekisho
  log "go build ./cmd/sekisho"
  (cd "$REPO" && go build -o "$SEKISHO" ./cmd/sekisho) || die "go build sekisho failed"
}

# sink_start PORT — smtp-sink counting messages (-c) on 127.0.0.1:PORT into SINK_LOG; sets SINK_PID.
SINK_LOG=$WORK/sink.log
sink_start() {
  local u=()
  [ "$(id -u)" = 0 ] && u=(-u postfix)
  smtp-sink -c "${u[@]}" -m 1024 "127.0.0.1:$1" 1024 >"$SINK_LOG" 2>&1 &
  SINK_PID=$!
  PIDS+=("$SINK_PID")
  wait_port "$1" "$SINK_PID" || { cat "$SINK_LOG" >&2; die "smtp-sink did not come up"; }
  log "started smtp-sink (pid $SINK_PID) on 127.0.0.1:$1"
}
# sink_count — the messages the sink has counted so far.
sink_count() {
  local c
  c=$(tail -c 200 "$SINK_LOG" 2>/dev/null | tr '\r' '\n' | grep -o 'mesg=[0-9]*' | tail -1 || true)
  c=${c#mesg=}
  echo "${c:-0}"
}
# sink_wait BEFORE — until the sink counted MSGS messages beyond BEFORE, or nothing arrived
# for STALL_S seconds; prints the count then.
sink_wait() {
  local after last=-1 last_change
  last_change=$(now)
  while :; do
    after=$(sink_count)
    ((after - $1 >= MSGS)) && break
    if ((after != last)); then last=$after; last_change=$(now); fi
    awk -v n="$(now)" -v l="$last_change" -v s="$STALL_S" 'BEGIN{exit !(n - l > s)}' && break
    sleep 0.02
  done
  echo "$after"
}

# AWK_MEDIAN — for the summaries, an awk function: med(k, arr) is the median of the samples
# arr[k, 1..n[k]], and sets lo and hi to their minimum and maximum.
AWK_MEDIAN='
function med(k, arr,   m, i, j, t, a) {
  m = n[k]; for (i = 1; i <= m; i++) a[i] = arr[k, i]
  for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
  lo = a[1]; hi = a[m]
  return (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
}'

# smoke PORT — one message via swaks must reach the sink (proves the whitelist and route).
smoke() {
  local b i; b=$(sink_count)
  swaks -s 127.0.0.1 -p "$1" -f bench@sender.test -t user@bench.test --timeout 10 >"$WORK/smoke.log" 2>&1 \
    || { cat "$WORK/smoke.log" >&2; die "smoke message via :$1 refused"; }
  for ((i = 0; i < 100; i++)); do (($(sink_count) > b)) && return 0; sleep 0.1; done
  die "smoke message via :$1 did not reach the sink (held? see $WORK)"
}

# mx_config HOSTNAME DATA_DIR PORT UPSTREAM_PORT — the sekisho configuration the SMTP benches
# share, on stdout: log level info, every client an outside sender (relay_networks = []), one
# mx listener and the upstream without TLS. Callers append tables of their own.
mx_config() {
  cat <<CONF
hostname = "$1"
data_dir = "$2"

[log]
level = "info"

[smtp]
local_domains = ["bench.test"]
relay_networks = []

[[smtp.listener]]
address = "127.0.0.1:$3"
role = "mx"
tls = "none"

[smtp.upstream]
servers = ["127.0.0.1:$4"]
tls = "none"

# This machine has no DNS for sender.test: SPF/DKIM of the whitelisted sender would cost one
# failed lookup per message; in production the answers are cached per TTL.
[antispam]
sender_auth = "${SENDER_AUTH:-off}"
CONF
}
