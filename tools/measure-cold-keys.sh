#!/usr/bin/env bash
# Measures issue 3's two headline numbers, Amber beside redis-server:
#  1. DRAM per cold key: load N keys (16-byte keys, 100-byte values) into Amber
#     with `dram-budget 64mb` (arena on /dev/shm), then
#     (RssAnon after load - RssAnon empty - budget) / N, from /proc/PID/status;
#     and redis-server's (RssAnon after load - RssAnon empty) / N.
#  2. Restart: time from process start to serving all N keys (DBSIZE = N):
#     Amber after SIGTERM (loading its index checkpoint) and after SIGKILL
#     (scanning the arena) vs redis-server loading an RDB of the same data.
# Usage: tools/measure-cold-keys.sh [N] [AMBER_BIN]   (defaults: 10000000, target/release/amber-server)
# Prints a Markdown block for bench/RESULTS.md.
set -euo pipefail
N=${1:-10000000}
AMBER=${2:-target/release/amber-server}
BUDGET_MB=64
WORK=$(mktemp -d /tmp/amber-measure.XXXX)
ARENA=/dev/shm/amber-measure-$$.arena
APORT=17601
RPORT=17602
trap 'pkill -f "port $APORT" || true; pkill -f "port $RPORT" || true; rm -rf "$WORK" "$ARENA" "$ARENA.index"' EXIT

rss_anon() { awk '/^RssAnon/ {printf "%.0f\n", $2 * 1024}' /proc/$1/status; }
wait_ready() { # port -> seconds with fraction until PING answers PONG
  local t0=$(date +%s.%N)
  until [ "$(redis-cli -p $1 ping 2>/dev/null)" = PONG ]; do sleep 0.01; done
  echo "$(date +%s.%N) - $t0" | bc
}
gen() { # the N SET commands as RESP
  awk -v n="$N" 'BEGIN { v = sprintf("%0100d", 0); for (i = 0; i < n; i++) printf "*3\r\n$3\r\nSET\r\n$16\r\nkey:%012d\r\n$100\r\n%s\r\n", i, v }'
}

# ---- Amber
"$AMBER" --port $APORT --dir "$WORK" --pmem-path "$ARENA" --pmem-size 4gb --dram-budget ${BUDGET_MB}mb \
  --persistence pmem --arena-sync everysec --loglevel warning &
APID=$!
wait_ready $APORT >/dev/null
A_EMPTY=$(rss_anon $APID)
T0=$(date +%s.%N); gen | redis-cli -p $APORT --pipe >/dev/null; A_LOAD=$(echo "$(date +%s.%N) - $T0" | bc)
sleep 3 # let the demoter settle under the budget
A_FULL=$(rss_anon $APID)
A_KEYS=$(redis-cli -p $APORT dbsize)
A_INFO=$(redis-cli -p $APORT info tiering 2>/dev/null | tr -d '\r' | grep -E '^(hot_keys|cold_keys|dram_bytes):' | tr '\n' ' ' || true)
kill -TERM $APID; wait $APID || true
T0=$(date +%s.%N)
"$AMBER" --port $APORT --dir "$WORK" --pmem-path "$ARENA" --pmem-size 4gb --dram-budget ${BUDGET_MB}mb \
  --persistence pmem --arena-sync everysec --loglevel warning &
APID=$!
until [ "$(redis-cli -p $APORT dbsize 2>/dev/null)" = "$A_KEYS" ]; do sleep 0.01; done
A_RESTART=$(echo "$(date +%s.%N) - $T0" | bc)
A_RESTART_RSS=$(rss_anon $APID)
# After a crash there is no index checkpoint: the arena is scanned.
kill -KILL $APID; wait $APID || true
T0=$(date +%s.%N)
"$AMBER" --port $APORT --dir "$WORK" --pmem-path "$ARENA" --pmem-size 4gb --dram-budget ${BUDGET_MB}mb \
  --persistence pmem --arena-sync everysec --loglevel warning &
APID=$!
until [ "$(redis-cli -p $APORT dbsize 2>/dev/null)" = "$A_KEYS" ]; do sleep 0.01; done
A_CRASH_RESTART=$(echo "$(date +%s.%N) - $T0" | bc)
kill -TERM $APID; wait $APID || true

# ---- Redis
redis-server --port $RPORT --dir "$WORK" --save "" --appendonly no --dbfilename dump.rdb >/dev/null &
RPID=$!
wait_ready $RPORT >/dev/null
R_EMPTY=$(rss_anon $RPID)
T0=$(date +%s.%N); gen | redis-cli -p $RPORT --pipe >/dev/null; R_LOAD=$(echo "$(date +%s.%N) - $T0" | bc)
R_FULL=$(rss_anon $RPID)
redis-cli -p $RPORT save >/dev/null
redis-cli -p $RPORT shutdown nosave >/dev/null 2>&1 || true
wait $RPID || true
T0=$(date +%s.%N)
redis-server --port $RPORT --dir "$WORK" --save "" --appendonly no --dbfilename dump.rdb >/dev/null &
RPID=$!
until [ "$(redis-cli -p $RPORT dbsize 2>/dev/null)" = "$N" ]; do sleep 0.01; done
R_RESTART=$(echo "$(date +%s.%N) - $T0" | bc)
kill -TERM $RPID; wait $RPID || true

BUDGET=$((BUDGET_MB * 1024 * 1024))
cat <<MD
| | Amber (dram-budget ${BUDGET_MB}mb, arena on /dev/shm) | redis-server 7.0 |
|---|---|---|
| keys loaded | $A_KEYS | $N |
| load time (redis-cli --pipe) | ${A_LOAD} s | ${R_LOAD} s |
| RssAnon empty | $A_EMPTY | $R_EMPTY |
| RssAnon loaded | $A_FULL | $R_FULL |
| DRAM per key | $(( (A_FULL - A_EMPTY - BUDGET) / N )) B (RssAnon - empty - budget) / keys; $(( (A_FULL - A_EMPTY) / N )) B without subtracting the budget | $(( (R_FULL - R_EMPTY) / N )) B |
| restart to all keys served, after SHUTDOWN/SIGTERM | ${A_RESTART} s (index checkpoint; RssAnon after: $A_RESTART_RSS) | ${R_RESTART} s (RDB load) |
| restart to all keys served, after SIGKILL | ${A_CRASH_RESTART} s (arena scan) | (RDB of the last save only) |
| tiering after load | $A_INFO | |
MD
