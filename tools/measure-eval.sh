#!/usr/bin/env bash
# Pipelined and single EVAL beside Redis (bench/RESULTS.md, "Pipelined
# EVAL"): `EVAL "redis.call('incr', KEYS[1]) return 1" 1 k`, 100,000
# requests, 50 clients, with -P 1 and -P 16; each server (Amber builds with
# `persistence none`, or redis-server) pinned to CPU 1 and redis-benchmark
# to CPU 0, the servers taking turns, ROUNDS times.
#
# Usage: tools/measure-eval.sh ROUNDS SERVER...   ("redis" = redis-server)
set -euo pipefail
R=$1; shift
PORT=${PORT:-17720}
for r in $(seq "$R"); do
  for b in "$@"; do
    d=$(mktemp -d)
    if [ "$b" = redis ]; then
      taskset -c 1 redis-server --port "$PORT" --dir "$d" --save "" --appendonly no >/dev/null &
    else
      taskset -c 1 "$b" --port "$PORT" --dir "$d" --persistence none --loglevel warning >/dev/null 2>&1 &
    fi
    until [ "$(redis-cli -p "$PORT" ping 2>/dev/null)" = PONG ]; do sleep 0.05; done
    for P in 1 16; do
      rate=$(taskset -c 0 redis-benchmark -p "$PORT" -n 100000 -c 50 -P "$P" -q \
        eval "redis.call('incr', KEYS[1]) return 1" 1 k 2>/dev/null |
        tr '\r' '\n' | grep -o '[0-9.]* requests per second' | tail -1)
      echo "round $r $(basename "$b") -P $P: $rate"
    done
    redis-cli -p "$PORT" shutdown nosave >/dev/null 2>&1 || true
    wait
    rm -rf "$d"
  done
done
