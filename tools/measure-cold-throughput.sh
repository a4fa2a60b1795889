#!/usr/bin/env bash
# Issue 3's third headline number: GET throughput with 90% of the keys cold
# (in the arena only) against the same load with every key hot (in DRAM).
#
# Loads N keys (16-byte keys `key:%012d`, 100-byte values, the names
# redis-benchmark's -r picks) into two Amber servers that differ only in
# `dram-budget`: one large enough for every key, one set to a tenth of what
# the first one's keys take (read from INFO tiering), so ~90% are cold. Then
# runs the same `redis-benchmark -t get -r N -P 16` against each, alternating
# ROUNDS times, and prints the runs and the median ratio cold/hot as Markdown.
# Arena on /dev/shm, `persistence pmem`, `arena-sync everysec` (the defaults).
#
# Usage: tools/measure-cold-throughput.sh [N] [ROUNDS] [AMBER_BIN]
#   (defaults: 1000000, 3, target/release/amber-server)
set -euo pipefail
N=${1:-1000000}
ROUNDS=${2:-3}
AMBER=${3:-target/release/amber-server}
REQS=$((N * 2))
WORK=$(mktemp -d /tmp/amber-cold-tput.XXXX)
HOT_PORT=17611
COLD_PORT=17612
trap 'pkill -f "port $HOT_PORT" || true; pkill -f "port $COLD_PORT" || true; rm -rf "$WORK" /dev/shm/amber-cold-tput-$$-*' EXIT

start() { # port budget
  "$AMBER" --port "$1" --dir "$WORK" --pmem-path "/dev/shm/amber-cold-tput-$$-$1.arena" \
    --pmem-size 2gb --dram-budget "$2" --loglevel warning >"$WORK/$1.log" 2>&1 &
  until [ "$(redis-cli -p "$1" ping 2>/dev/null)" = PONG ]; do sleep 0.05; done
}
info() { redis-cli -p "$1" info tiering | tr -d '\r' | awk -F: -v k="$2" '$1 == k {print $2}'; }
gen() {
  awk -v n="$N" 'BEGIN { v = sprintf("%0100d", 0); for (i = 0; i < n; i++) printf "*3\r\n$3\r\nSET\r\n$16\r\nkey:%012d\r\n$100\r\n%s\r\n", i, v }'
}
get_rps() { # port -> requests per second of one GET run
  redis-benchmark -p "$1" -t get -n "$REQS" -r "$N" -c 50 -P 16 -d 100 -q 2>/dev/null |
    tr '\r' '\n' | awk '/^GET: [0-9]/ {print $2}' | tail -1
}

start $HOT_PORT 4gb
gen | redis-cli -p $HOT_PORT --pipe >/dev/null
HOT_BYTES=$(info $HOT_PORT dram_bytes)
BUDGET=$((HOT_BYTES / 10))
start $COLD_PORT "$BUDGET"
gen | redis-cli -p $COLD_PORT --pipe >/dev/null
# Let the demoter bring DRAM under the budget.
for _ in $(seq 100); do
  [ "$(info $COLD_PORT dram_bytes)" -le "$BUDGET" ] && break
  sleep 0.1
done

hot_runs=() cold_runs=() ratios=()
for r in $(seq "$ROUNDS"); do
  h=$(get_rps $HOT_PORT)
  c=$(get_rps $COLD_PORT)
  hot_runs+=("$h") cold_runs+=("$c")
  ratios+=("$(echo "scale=3; $c / $h" | bc)")
done
COLD_SHARE=$(echo "scale=3; $(info $COLD_PORT cold_keys) / $N" | bc)
MEDIAN=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}')

echo "| run | 100% hot (GET/s) | ~90% cold (GET/s) | cold / hot |"
echo "|---|---:|---:|---:|"
for i in "${!ratios[@]}"; do
  echo "| $((i + 1)) | ${hot_runs[$i]} | ${cold_runs[$i]} | ${ratios[$i]} |"
done
echo
echo "N=$N keys, hot DRAM $HOT_BYTES B, cold server budget $BUDGET B, cold share after the runs $COLD_SHARE," \
  "median cold/hot $MEDIAN (load average $(cut -d' ' -f1-3 /proc/loadavg))"
