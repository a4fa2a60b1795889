#!/usr/bin/env bash
# Two or more servers side by side on issue 4's redis-benchmark tests, with
# `persistence none` (redis-server: no save, no AOF): the servers take
# turns, ROUNDS times, and the table gives each test's median per server and
# its ratio to the first server's. For A/B runs of two Amber builds.
#
# Usage: tools/ab-servers.sh ROUNDS TESTS SERVER...   ("redis" = redis-server)
#   e.g. tools/ab-servers.sh 3 zadd,mset base/amber-server new/amber-server redis
set -euo pipefail
R=$1; T=$2; shift 2
PORT=${PORT:-17700}
N=${N:-1000000}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for r in $(seq "$R"); do
  for b in "$@"; do
    d=$(mktemp -d)
    if [ "$b" = redis ]; then
      redis-server --port "$PORT" --dir "$d" --save "" --appendonly no >/dev/null &
    else
      "$b" --port "$PORT" --dir "$d" --persistence none --loglevel warning >/dev/null 2>&1 &
    fi
    until [ "$(redis-cli -p "$PORT" ping 2>/dev/null)" = PONG ]; do sleep 0.05; done
    redis-benchmark -p "$PORT" -t "$T" -n "$N" -r 100000 -c 50 -P 16 --csv -q 2>/dev/null |
      tr -d '"' | awk -F, -v s="$r:$b" 'NR>1 {print s "\t" $1 "\t" $2}' >>"$out"
    redis-cli -p "$PORT" shutdown nosave >/dev/null 2>&1 || true
    wait
    rm -rf "$d"
  done
done
python3 - "$out" "$@" <<'PY'
import collections, statistics, sys
rates = collections.defaultdict(list)
tests = []
for line in open(sys.argv[1]):
    who, test, rate = line.rstrip("\n").split("\t")
    server = who.split(":", 1)[1]
    rates[(server, test)].append(float(rate))
    if test not in tests:
        tests.append(test)
servers = sys.argv[2:]
print("| test | " + " | ".join(servers) + " | " + " | ".join(f"{s} / {servers[0]}" for s in servers[1:]) + " |")
print("|---" * (2 * len(servers)) + "|")
for t in tests:
    m = [statistics.median(rates[(s, t)]) for s in servers]
    print(f"| {t} | " + " | ".join(f"{x:,.0f}" for x in m) + " | " + " | ".join(f"{x / m[0]:.2f}" for x in m[1:]) + " |")
PY
