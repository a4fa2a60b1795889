#!/usr/bin/env bash
# tools/p1-floor/run.sh [ROUNDS]: CPU per SET at redis-benchmark -P 1 of
#   - p1-floor: a server that does nothing but answer +OK, on io_uring,
#   - redis-server (no persistence),
#   - amber-server (--persistence none, target/release),
# alternated, ROUNDS times. CPU = utime + stime of the server's process
# (/proc/PID/stat, all threads) over the run, divided by the requests.
# Needs redis-server and redis-benchmark; builds p1-floor and amber-server.
set -euo pipefail
ROUNDS=${1:-3}
N=300000
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
(cd "$here" && cargo build --release -q)
(cd "$repo" && cargo build --release -q -p amber-server)
work=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pf=$(free_port); rp=$(free_port); ap=$(free_port)
"$here/target/release/p1-floor" "$pf" & pids+=($!); FLOOR=$!
redis-server --port "$rp" --save '' --appendonly no --dir "$work" --daemonize no >/dev/null 2>&1 & pids+=($!); REDIS=$!
"$repo/target/release/amber-server" --port "$ap" --dir "$work" --persistence none \
    --pmem-path "$work/amber.arena" --loglevel warning >/dev/null 2>&1 & pids+=($!); AMBER=$!
sleep 1
run() { # NAME PID PORT
    local t0 t1 out
    t0=$(awk '{print $14" "$15}' "/proc/$2/stat")
    out=$(timeout 120 redis-benchmark -p "$3" -t set -n $N -r 1000000 -d 100 -c 50 -P 1 -q 2>/dev/null |
        tr '\r' '\n' | grep "per second" | tail -1)
    t1=$(awk '{print $14" "$15}' "/proc/$2/stat")
    python3 - "$1" "$out" "$t0" "$t1" "$N" <<'EOF'
import os, sys
name, out, t0, t1, n = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4].split(), int(sys.argv[5])
hz = os.sysconf("SC_CLK_TCK")
us = lambda a, b: (int(b) - int(a)) * 1e6 / hz / n
u, s = us(t0[0], t1[0]), us(t0[1], t1[1])
print(f"{name:10} {out.split()[1] if out else '?':>10} req/s  user {u:.2f}  sys {s:.2f}  total {u + s:.2f} us/req")
EOF
}
for _ in $(seq "$ROUNDS"); do
    run p1-floor $FLOOR "$pf"
    run redis $REDIS "$rp"
    run amber $AMBER "$ap"
done
