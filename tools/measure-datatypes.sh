#!/usr/bin/env bash
# Issue 4's benchmark, side by side, as a Markdown table:
#   redis-benchmark -t lpush,rpush,lpop,rpop,sadd,hset,spop,zadd,zpopmin,lrange_100,mset
#     -n N -r 100000 -c 50 -P 16
# against, one after the other on the same machine:
#   * Amber with its defaults (`persistence pmem`, `arena-sync everysec`,
#     arena on /dev/shm): every write reaches the arena before its reply;
#   * redis-server 7.0 with `appendonly yes`, `appendfsync everysec`: the
#     same promise (at most a second of acknowledged writes lost on a crash);
#   * Amber with `persistence none` and redis-server without persistence.
# Each server gets a short warm-up pass of the same tests first. Then `LPUSH`
# of N elements onto one list, the case that used to fill the
# arena with rewrites of the whole list (see docs/ARCHITECTURE.md, "Delta
# records").
#
# The four servers take turns, ROUNDS times (this VM's speed drifts by tens
# of percent over minutes; one server's whole run after the other's measured
# the drift as much as the servers), and each figure is the median of its
# rounds.
#
# Usage: tools/measure-datatypes.sh [N] [AMBER_BIN] [ROUNDS]
#   (defaults: 1000000, target/release/amber-server, 3)
set -euo pipefail
N=${1:-1000000}
AMBER=${2:-target/release/amber-server}
ROUNDS=${3:-3}
WORK=$(mktemp -d /tmp/amber-types.XXXX)
PORT=17621
TESTS=lpush,rpush,lpop,rpop,sadd,hset,spop,zadd,zpopmin,lrange_100,mset
trap 'redis-cli -p $PORT shutdown nosave >/dev/null 2>&1 || true; rm -rf "$WORK" /dev/shm/amber-types-$$.arena' EXIT

start_amber() { # extra args...
  rm -f /dev/shm/amber-types-$$.arena
  "$AMBER" --port $PORT --dir "$WORK" --pmem-path /dev/shm/amber-types-$$.arena --pmem-size 4gb \
    --loglevel warning "$@" >>"$WORK/amber.log" 2>&1 &
  until [ "$(redis-cli -p $PORT ping 2>/dev/null)" = PONG ]; do sleep 0.05; done
}
start_redis() { # extra args...
  rm -f "$WORK"/*.aof "$WORK"/appendonlydir -r
  redis-server --port $PORT --dir "$WORK" --save "" "$@" >/dev/null &
  until [ "$(redis-cli -p $PORT ping 2>/dev/null)" = PONG ]; do sleep 0.05; done
}
stop() {
  redis-cli -p $PORT shutdown nosave >/dev/null 2>&1 || true
  while redis-cli -p $PORT ping >/dev/null 2>&1; do sleep 0.05; done
}
run() { # -> "TEST rps" lines
  redis-benchmark -p $PORT -t "$TESTS" -n "$N" -r 100000 -c 50 -P 16 --csv 2>/dev/null |
    tr -d '"' | awk -F, 'NR > 1 {print $1 "," $2}'
}
one_list() {
  redis-benchmark -p $PORT -t lpush -n "$N" -c 50 -P 16 --csv 2>/dev/null |
    tr -d '"' | awk -F, 'NR > 1 && $1 == "LPUSH" {print $2}'
}

# R[cfg,test] collects one figure per round, space-separated.
declare -A R
for round in $(seq "$ROUNDS"); do
  for cfg in amber-pmem redis-aof amber-none redis-none; do
    case $cfg in
    amber-pmem) start_amber ;;
    amber-none) start_amber --persistence none ;;
    redis-aof) start_redis --appendonly yes --appendfsync everysec ;;
    redis-none) start_redis --appendonly no ;;
    esac
    # Warm-up (a fresh process pays its first page faults), then the run.
    redis-benchmark -p $PORT -t "$TESTS" -n 200000 -r 100000 -c 50 -P 16 -q >/dev/null 2>&1
    redis-cli -p $PORT flushall >/dev/null
    while IFS=, read -r test rps; do R[$cfg,$test]+="$rps "; done < <(run)
    redis-cli -p $PORT flushall >/dev/null
    R[$cfg,list]+="$(one_list) "
    R[$cfg,listlen]+="$(redis-cli -p $PORT llen mylist) "
    stop
  done
done

median() { tr ' ' '\n' | grep . | sort -g | awk '{v[NR]=$1} END {printf "%.0f\n", (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
declare -A RAW
for k in "${!R[@]}"; do
  RAW[$k]=${R[$k]}
  case $k in *,listlen) ;; *) R[$k]=$(echo "${R[$k]}" | median) ;; esac
done

ratio() { echo "scale=2; $1 / $2" | bc; }
echo "| test | Amber pmem | Redis AOF everysec | ratio | Amber none | Redis none | ratio |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for t in LPUSH RPUSH LPOP RPOP SADD HSET SPOP ZADD ZPOPMIN "LPUSH (needed to benchmark LRANGE)" "LRANGE_100 (first 100 elements)" "MSET (10 keys)"; do
  [ -n "${R[amber-pmem,$t]:-}" ] || continue
  echo "| $t | ${R[amber-pmem,$t]} | ${R[redis-aof,$t]} | $(ratio "${R[amber-pmem,$t]}" "${R[redis-aof,$t]}") |" \
    "${R[amber-none,$t]} | ${R[redis-none,$t]} | $(ratio "${R[amber-none,$t]}" "${R[redis-none,$t]}") |"
done
echo "| LPUSH of $N onto one list | ${R[amber-pmem,list]} | ${R[redis-aof,list]} | $(ratio "${R[amber-pmem,list]}" "${R[redis-aof,list]}") |" \
  "${R[amber-none,list]} | ${R[redis-none,list]} | $(ratio "${R[amber-none,list]}" "${R[redis-none,list]}") |"
echo
echo "Medians of $ROUNDS rounds. List lengths after the one-list runs: amber-pmem ${R[amber-pmem,listlen]}, redis-aof ${R[redis-aof,listlen]}," \
  "amber-none ${R[amber-none,listlen]}, redis-none ${R[redis-none,listlen]} (load average $(cut -d' ' -f1-3 /proc/loadavg))"
echo
echo "Each round, Amber pmem / Redis AOF everysec:"
echo
for t in LPUSH RPUSH LPOP RPOP SADD HSET SPOP ZADD ZPOPMIN "LRANGE_100 (first 100 elements)" "MSET (10 keys)" list; do
  [ -n "${RAW[amber-pmem,$t]:-}" ] || continue
  read -ra a <<<"${RAW[amber-pmem,$t]}"
  read -ra r <<<"${RAW[redis-aof,$t]}"
  line="- $t:"
  for i in "${!a[@]}"; do line+=" $(ratio "${a[$i]}" "${r[$i]:-1}")"; done
  echo "$line"
done
