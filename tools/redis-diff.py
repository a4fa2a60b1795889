#!/usr/bin/env python3
"""Dev tool: replay a conformance script against redis-server and amber-server
and print every reply that differs. (The test suite's Rust runner,
tests/src/conformance.rs, is the authority; this is for quick iteration.)

Usage: [AMBER_EXTRA_ARGS="--dram-budget 0"] tools/redis-diff.py [--amber-bin PATH] SCRIPT.redis ...

Script format (same as the test suite): one command per line, split like
redis-cli/inline commands ("double quotes", 'single', \\x41 escapes). Blank
lines and lines starting with # are skipped. A line may start with a marker:
  @sorted CMD   compare arrays after sorting their elements (order-free replies)
  @shape CMD    compare only the reply's RESP type
  @ignore CMD   run it on both, compare nothing
  @approx CMD   integers may differ by max(1, 1% of Redis's value): TTL/PTTL
                after a clock tick or a slow machine
  @sleep MS     sleep that many milliseconds (no command)
  @xfail CMD    a known difference: must differ (remove the marker once fixed)
"""
import os, socket, subprocess, sys, tempfile, time
sys.path.insert(0, os.path.dirname(__file__))

def split_args(line):
    out, i, n = [], 0, len(line)
    while True:
        while i < n and line[i] in ' \t\r\n': i += 1
        if i >= n: return out
        cur, q = bytearray(), None
        while i < n:
            c = line[i]
            if q == '"':
                if c == '\\' and i + 3 < n and line[i+1] == 'x':
                    cur.append(int(line[i+2:i+4], 16)); i += 4; continue
                if c == '\\' and i + 1 < n:
                    cur += {'n': b'\n', 'r': b'\r', 't': b'\t', 'b': b'\b', 'a': b'\a'}.get(line[i+1], line[i+1].encode()); i += 2; continue
                if c == '"': q = None; i += 1; break
                cur += c.encode(); i += 1
            elif q == "'":
                if c == "'": q = None; i += 1; break
                cur += c.encode(); i += 1
            else:
                if c in ' \t': break
                if c in '"\'': q = c; i += 1; continue
                cur += c.encode(); i += 1
        out.append(bytes(cur))

def read_reply(f):
    raw = bytearray()
    def one():
        l = f.readline(); raw.extend(l)
        t = l[:1]
        if t in (b'$', b'='):
            n = int(l[1:-2])
            if n >= 0: raw.extend(f.read(n + 2))
        elif t in (b'*', b'~', b'>', b'%'):
            n = int(l[1:-2])
            for _ in range(max(n, 0) * (2 if t == b'%' else 1)): one()
    one()
    return bytes(raw)

def free_port():
    """A port nothing listens on now (so parallel runs do not meet)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

def start(cmd, port):
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            s = socket.create_connection(("127.0.0.1", port)); return p, s
        except OSError: time.sleep(0.05)
    raise SystemExit(f"server on {port} did not start: {cmd}")

def main():
    args = sys.argv[1:]
    amber = "target/debug/amber-server"
    if args[:1] == ["--amber-bin"]: amber, args = args[1], args[2:]
    d = tempfile.mkdtemp()
    rport, aport = free_port(), free_port()
    rp, rs = start(["redis-server", "--port", str(rport), "--save", "", "--dir", d], rport)
    extra = os.environ.get("AMBER_EXTRA_ARGS", "").split()
    ap, as_ = start([amber, "--port", str(aport), "--dir", d, "--pmem-path", d + "/a.arena", "--pmem-size", "256mb"] + extra, aport)
    rf, af = rs.makefile("rb"), as_.makefile("rb")
    bad = 0
    try:
        for script in args:
            for s, f in ((rs, rf), (as_, af)):
                for c in (b"*1\r\n$8\r\nFLUSHALL\r\n", b"*2\r\n$5\r\nHELLO\r\n$1\r\n2\r\n", b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n"):
                    s.sendall(c); read_reply(f)
            for no, line in enumerate(open(script, encoding="utf-8", errors="surrogateescape"), 1):
                line = line.rstrip("\n")
                if not line.strip() or line.lstrip().startswith("#"): continue
                mode = "exact"
                if line.startswith("@"):
                    mode, _, line = line[1:].partition(" ")
                    if mode == "sleep": time.sleep(int(line) / 1000); continue
                argv = split_args(line)
                req = b"*%d\r\n" % len(argv) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in argv)
                rs.sendall(req); as_.sendall(req)
                r, a = read_reply(rf), read_reply(af)
                same = {"exact": r == a, "ignore": True, "shape": r[:1] == a[:1],
                        "sorted": sorted(r.split(b"\r\n")) == sorted(a.split(b"\r\n")),
                        "xfail": r != a, "approx": r == a or (r[:1] == a[:1] == b":" and abs(int(r[1:-2]) - int(a[1:-2])) <= max(1, abs(int(r[1:-2])) // 100))}[mode]
                if not same:
                    bad += 1
                    print(f"{script}:{no}: {line}\n  redis: {r!r}\n  amber: {a!r}")
    finally:
        rp.terminate(); ap.terminate()
    print(f"{bad} differences")
    sys.exit(1 if bad else 0)

main()
