#!/usr/bin/env bash
# cluster.sh — sekisho's SMTP throughput on PostgreSQL, one node against two nodes (issue 6):
#   direct:   smtp-source -> smtp-sink
#   one-node: smtp-source -> sekisho node 1 -> smtp-sink
#   two-node: two smtp-source (half the messages and half the sessions each, in parallel, one
#             per node: round robin) -> sekisho node 1 / node 2 -> smtp-sink
# in the same run, interleaved over REPS repetitions, the same total (MSGS messages of SIZE
# bytes, SESSIONS sessions in all). Both nodes serve on one PostgreSQL schema (store driver
# "postgres", a fresh schema bench_<random>, dropped at the end) and run during every run
# (node 2 idles while one node is measured: only its heartbeat).
#
# It also counts the statements the database executes during each sekisho run, to show that
# the pass path (a whitelisted sender, as in bench/smtp.sh) looks the lists up in memory:
# 0 statements per message; what remains is the nodes' background work (heartbeat, jobs),
# measured alone over IDLE_S seconds of idling. Counting uses pg_stat_statements (exact, per
# statement) when the server has it loaded, else pg_stat_database.xact_commit of the database
# (transactions, database-wide: other clients of that database count too).
#
# The PostgreSQL server: PG_DSN when set (a libpq URL without search_path, e.g.
# postgres://postgres@127.0.0.1:5432/test?sslmode=disable); else, with PG_LOCAL=1 (default
# when initdb is found), a throwaway cluster started here (initdb as user postgres when run as
# root, pg_stat_statements preloaded, fsync on, stopped at the end); PG_LOCAL=0 uses CI's
# postgres://postgres@127.0.0.1:5432/test.
#
# Usage:  bench/cluster.sh
#         REPS=1 MSGS=1000 bench/cluster.sh
#         PG_DSN=postgres://postgres@127.0.0.1:5432/test?sslmode=disable bench/cluster.sh
#
# Env (defaults): SESSIONS=20 MSGS=5000 SIZE=10240 REPS=3 IDLE_S=10
#   SINK_PORT=25270 NODE1_PORT=25271 NODE2_PORT=25272  PG_PORT=25279 (throwaway cluster)
#   SEKISHO_BIN (default: go build ./cmd/sekisho)  RUN_TIMEOUT=300 STALL_S=15 STATS_WAIT=11
#   RESULTS_DIR=${TMPDIR:-/tmp}/sekisho-bench-results  KEEP_WORK=0  SENDER_AUTH=off
# Needs: smtp-source, smtp-sink (Debian postfix), swaks, psql; the PostgreSQL server package
# for PG_LOCAL=1. Stops exactly the processes it started.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
SESSIONS=${SESSIONS:-20}
MSGS=${MSGS:-5000}
SIZE=${SIZE:-10240}
REPS=${REPS:-3}
IDLE_S=${IDLE_S:-10}
SINK_PORT=${SINK_PORT:-25270}
NODE1_PORT=${NODE1_PORT:-25271}
NODE2_PORT=${NODE2_PORT:-25272}
PG_PORT=${PG_PORT:-25279}
RUN_TIMEOUT=${RUN_TIMEOUT:-300}
STALL_S=${STALL_S:-15}
STATS_WAIT=${STATS_WAIT:-11}
RESULTS_DIR=${RESULTS_DIR:-${TMPDIR:-/tmp}/sekisho-bench-results}
STAMP=$(date +%Y%m%d-%H%M%S)
RAW=$RESULTS_DIR/sekisho-cluster-$STAMP.tsv
mkdir -p "$RESULTS_DIR"
: >"$RAW"
source "$(dirname "$0")/common.sh" sekisho-bench-cluster
PG_LOCAL_DIR=""
SCHEMA=""
# The schema and the throwaway PostgreSQL go when the script ends.
drop_pg() {
  if [ -n "$SCHEMA" ]; then
    psql "$PG_BASE" -Atqc "DROP SCHEMA IF EXISTS $SCHEMA CASCADE" >/dev/null 2>&1 \
      && log "dropped schema $SCHEMA" || log "could not drop schema $SCHEMA"
  fi
  if [ -n "$PG_LOCAL_DIR" ]; then
    pg_as "$PG_BIN/pg_ctl" -D "$PG_LOCAL_DIR/data" -m fast -w stop >/dev/null 2>&1 || log "pg_ctl stop failed"
    log "stopped the throwaway PostgreSQL cluster"
    [ "${KEEP_WORK:-0}" = 1 ] || rm -rf "$PG_LOCAL_DIR"
  fi
}
CLEANUP_HOOKS+=(drop_pg)
need smtp-source postfix; need smtp-sink postfix; need swaks swaks; need psql postgresql-client
for p in "$SINK_PORT" "$NODE1_PORT" "$NODE2_PORT"; do port_busy "$p" && die "port $p in use (set SINK_PORT / NODE1_PORT / NODE2_PORT)"; done

# ---------------------------------------------------------------- PostgreSQL
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
pg_as() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
if [ -n "${PG_DSN:-}" ]; then
  PG_BASE=$PG_DSN
elif [ "${PG_LOCAL:-$([ -x "$PG_BIN/initdb" ] && echo 1 || echo 0)}" = 1 ]; then
  [ -x "$PG_BIN/initdb" ] || die "PG_LOCAL=1 and no /usr/lib/postgresql/*/bin/initdb (Debian package postgresql)"
  port_busy "$PG_PORT" && die "port $PG_PORT in use (set PG_PORT)"
  PG_LOCAL_DIR=$(mktemp -d /tmp/sekisho-bench-pg-XXXXXX)
  [ "$(id -u)" = 0 ] && chown postgres: "$PG_LOCAL_DIR"
  pg_as "$PG_BIN/initdb" -D "$PG_LOCAL_DIR/data" --auth=trust -U postgres -E UTF8 --locale=C >"$WORK/initdb.log" 2>&1 \
    || { cat "$WORK/initdb.log" >&2; die "initdb failed"; }
  pg_as tee -a "$PG_LOCAL_DIR/data/postgresql.conf" >/dev/null <<EOF
port = $PG_PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$PG_LOCAL_DIR'
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track = all
EOF
  pg_as "$PG_BIN/pg_ctl" -D "$PG_LOCAL_DIR/data" -l "$PG_LOCAL_DIR/postgres.log" -w start >/dev/null \
    || { cat "$PG_LOCAL_DIR/postgres.log" >&2; die "pg_ctl start failed"; }
  PG_BASE="postgres://postgres@127.0.0.1:$PG_PORT/postgres?sslmode=disable"
  log "started a throwaway PostgreSQL ($("$PG_BIN/postgres" --version)) on 127.0.0.1:$PG_PORT, pg_stat_statements loaded"
else
  PG_BASE="postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
fi
sql() { psql "$PG_BASE" -X -Atq -v ON_ERROR_STOP=1 -c "$1"; }
sql "SELECT 1" >/dev/null || die "cannot connect to $PG_BASE"
SCHEMA=bench_$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
sql "CREATE SCHEMA $SCHEMA" >/dev/null
case $PG_BASE in *\?*) SEKISHO_DSN="$PG_BASE&search_path=$SCHEMA" ;; *) SEKISHO_DSN="$PG_BASE?search_path=$SCHEMA" ;; esac
log "schema $SCHEMA on $PG_BASE"

# Query counting: pg_stat_statements when loaded (CREATE EXTENSION where we may), else
# transactions committed in the database.
sql "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >/dev/null 2>&1 || true
if sql "SELECT count(*) FROM pg_stat_statements" >/dev/null 2>&1; then
  COUNTING=statements
  # Our own psql calls excluded; the other databases of the server too.
  STMT_FILTER="dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND query NOT LIKE '%pg_stat%'"
  count_reset() { sql "SELECT pg_stat_statements_reset()" >/dev/null; }
  count_read() { sql "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE $STMT_FILTER"; }
  count_top() {  # the statements counted since the reset, most frequent first
    sql "SELECT calls || E'\t' || regexp_replace(left(query, 110), '\s+', ' ', 'g') FROM pg_stat_statements WHERE $STMT_FILTER ORDER BY calls DESC LIMIT ${1:-8}"
  }
else
  COUNTING=transactions
  count_reset() { :; }
  count_read() { sleep "$STATS_WAIT"; sql "SELECT pg_stat_clear_snapshot(); SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()" | tail -1; }
  count_top() { :; }
  log "pg_stat_statements not loaded on this server: counting committed transactions of the database (waits ${STATS_WAIT}s for the statistics each time)"
fi

# ---------------------------------------------------------------- sekisho
build_sekisho

# node_config NAME PORT — sekisho's configuration as in bench/smtp.sh, on the shared store.
node_config() {
  local name=$1 port=$2 d=$WORK/$1
  mkdir -p "$d/data"
  {
    mx_config "$name.bench.test" "$d/data" "$port" "$SINK_PORT"
    cat <<EOF

[store]
driver = "postgres"
dsn = "$SEKISHO_DSN"
node_id = "$name"
EOF
  } >"$d/sekisho.toml"
  "$SEKISHO" check -config "$d/sekisho.toml" >/dev/null || die "sekisho check failed for $name"
}
node_start() {  # node_start NAME PORT — sets NODE_PID
  local d=$WORK/$1
  "$SEKISHO" serve -config "$d/sekisho.toml" 2>"$d/sekisho.log" &
  NODE_PID=$!
  PIDS+=("$NODE_PID")
  wait_port "$2" "$NODE_PID" || { cat "$d/sekisho.log" >&2; die "sekisho $1 did not come up on :$2"; }
  log "started sekisho $1 (pid $NODE_PID) on 127.0.0.1:$2 -> 127.0.0.1:$SINK_PORT, store schema $SCHEMA"
}

# run_one TARGET REP PORT... — MSGS messages over SESSIONS sessions, split evenly across the
# ports (one smtp-source per port, in parallel); timed until the sink counted them all.
run_one() {
  local target=$1 rep=$2
  shift 2
  local n=$# before after t0 t2 rc=0 i port m s q0=0 q1=0 pids=()
  before=$(sink_count)
  [ "$target" != direct ] && { count_reset; q0=$(count_read); }
  t0=$(now)
  i=0
  for port; do
    m=$((MSGS / n + (i < MSGS % n ? 1 : 0)))
    s=$((SESSIONS / n + (i < SESSIONS % n ? 1 : 0)))
    timeout "$RUN_TIMEOUT" smtp-source -s "$s" -m "$m" -l "$SIZE" \
      -f bench@sender.test -t user@bench.test -M client.bench.test "inet:127.0.0.1:$port" >"$WORK/source-$i.log" 2>&1 &
    pids+=($!)
    i=$((i + 1))
  done
  for i in "${!pids[@]}"; do wait "${pids[i]}" || rc=$?; done
  after=$(sink_wait "$before")
  t2=$(now)
  local got=$((after - before)) e2e rate queries=- perk=-
  e2e=$(awk -v a="$t0" -v b="$t2" 'BEGIN{printf "%.3f", b - a}')
  rate=$(awk -v m="$got" -v s="$e2e" 'BEGIN{printf "%.1f", m / s}')
  if [ "$target" != direct ]; then
    q1=$(count_read)
    queries=$((q1 - q0))
    perk=$(awk -v q="$queries" -v m="$got" 'BEGIN{printf "%.2f", m ? q * 1000 / m : 0}')
    count_top 6 >"$WORK/top-$target-$rep.txt" || true
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$target" "$rep" "$rate" "$e2e" "$got" "$queries" "$perk" >>"$RAW"
  local note=""
  ((rc != 0)) && note=" smtp-source rc=$rc: $(tail -2 "$WORK"/source-*.log | tr '\n' ' ')"
  ((got < MSGS)) && note="$note SINK GOT ONLY $got/$MSGS"
  local qnote=""
  [ "$target" != direct ] && qnote=", $queries $COUNTING in the database during the run ($perk per 1000 messages)"
  log "  $target rep$rep: $rate msg/s, ${e2e}s for $got messages$qnote$note"
}

# ---------------------------------------------------------------- the run
sink_start "$SINK_PORT"
node_config node-1 "$NODE1_PORT"
node_config node-2 "$NODE2_PORT"
"$SEKISHO" list add white bench@sender.test -config "$WORK/node-1/sekisho.toml" >/dev/null || die "list add white failed"
node_start node-1 "$NODE1_PORT"; PID1=$NODE_PID
node_start node-2 "$NODE2_PORT"; PID2=$NODE_PID
smoke "$NODE1_PORT"
smoke "$NODE2_PORT"

# Background work of the two idle nodes (heartbeat, jobs), for comparison with the runs.
count_reset
q0=$(count_read)
sleep "$IDLE_S"
q1=$(count_read)
IDLE_Q=$((q1 - q0))
# The transaction counter is read after waiting STATS_WAIT s: that wait is in every window.
EXTRA_S=0
[ "$COUNTING" = transactions ] && EXTRA_S=$STATS_WAIT
IDLE_S_EFF=$((IDLE_S + EXTRA_S))
log "two idle nodes: $IDLE_Q $COUNTING in ${IDLE_S_EFF}s"
count_top 8 >"$WORK/top-idle.txt" || true

log "direct vs one node vs two nodes: sessions=$SESSIONS msgs=$MSGS size=$SIZE reps=$REPS"
for ((rep = 1; rep <= REPS; rep++)); do   # interleaved: all three see the same noise
  run_one direct "$rep" "$SINK_PORT"
  run_one one-node "$rep" "$NODE1_PORT"
  run_one two-node "$rep" "$NODE1_PORT" "$NODE2_PORT"
done
RSS1=$(awk '/^VmHWM/ {print $2, $3}' "/proc/$PID1/status" 2>/dev/null || echo n/a)
RSS2=$(awk '/^VmHWM/ {print $2, $3}' "/proc/$PID2/status" 2>/dev/null || echo n/a)
HELD=$(psql "$PG_BASE" -X -Atqc "SET search_path = $SCHEMA; SELECT count(*) FROM held_messages" 2>/dev/null | tail -1 || echo '?')

{
  echo "# sekisho bench/cluster.sh $STAMP  sessions=$SESSIONS msgs=$MSGS size=${SIZE}B reps=$REPS  ($(nproc) CPUs, $(psql "$PG_BASE" -X -Atqc 'SHOW server_version' | cut -d' ' -f1) PostgreSQL, postfix $(dpkg-query -W -f='${Version}' postfix 2>/dev/null || echo '?'))"
  echo "# msg/s: smtp-source start until smtp-sink counted every message; median of $REPS (min-max)"
  echo "# $COUNTING: executed by the database during the run, all clients of the database (pg_stat_statements: our psql excluded)"
  awk -F'\t' -v idle="$IDLE_Q" -v idles="$IDLE_S_EFF" -v counting="$COUNTING" -v extra="$EXTRA_S" "$AWK_MEDIAN"'
    { n[$1]++; v[$1, n[$1]] = $3; e[$1, n[$1]] = $4; q[$1, n[$1]] = $6; order[$1] = NR }
    END {
      d = med("direct", v)
      one = med("one-node", v)
      printf "%-9s  %-22s  %-9s  %-9s  %s\n", "target", "msg/s [min-max]", "/direct", "/one-node", counting " during the run (per 1000 msgs; idle-node share)"
      split("direct one-node two-node", ts, " ")
      for (i = 1; i <= 3; i++) {
        t = ts[i]; if (!n[t]) continue
        x = med(t, v); xlo = lo; xhi = hi
        qs = "-"
        if (t != "direct") {
          qq = med(t, q); es = med(t, e)
          qs = sprintf("%d (%.2f; the idle nodes make ~%.0f in %.1fs)", qq, qq * 1000 / '"$MSGS"', idle * (es + extra) / idles, es + extra)
        }
        printf "%-9s  %-22s  %-9s  %-9s  %s\n", t, sprintf("%.0f [%.0f-%.0f]", x, xlo, xhi),
          sprintf("%.2f", d > 0 ? x / d : 0), (t == "direct" ? "-" : sprintf("%.2f", one > 0 ? x / one : 0)), qs
      }
    }' "$RAW"
  echo "# two idle nodes: $IDLE_Q $COUNTING in ${IDLE_S_EFF}s; held messages in the store after the runs: $HELD (0: every message passed)"
  if [ "$COUNTING" = statements ]; then
    echo "# statements during the last two-node run (calls, statement):"
    sed 's/^/#   /' "$WORK/top-two-node-$REPS.txt"
    echo "# statements of the two idle nodes over ${IDLE_S}s:"
    sed 's/^/#   /' "$WORK/top-idle.txt"
  fi
  echo "# peak RSS (VmHWM): node-1 $RSS1, node-2 $RSS2; raw samples: $RAW"
} | tee "${RAW%.tsv}.txt"
