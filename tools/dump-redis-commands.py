#!/usr/bin/env python3
"""Dumps Redis 7.0's command metadata into server/src/cmd/redis_commands.json.

Amber answers COMMAND, COMMAND INFO and COMMAND DOCS with exactly what Redis
7.0 answers for the commands Amber implements, so that redis-cli's hints and
client libraries that introspect commands see no difference. Rather than copy
Redis's JSON command files by hand, this script asks a real redis-server for
each command's INFO and DOCS replies (raw RESP2 and RESP3 bytes) and extracts
arity, flags and key positions for Amber's dispatcher.

Usage: tools/dump-redis-commands.py [path-to-redis-server]   (writes the JSON)
"""
import json, os, socket, subprocess, sys, tempfile, time

def read_reply(f):
    """Reads one RESP reply; returns (parsed, raw bytes)."""
    raw = bytearray()
    def line():
        l = f.readline()
        raw.extend(l)
        return l[:-2]
    def one():
        l = line()
        t, rest = l[:1], l[1:]
        if t in (b'+', b'-'):
            return rest.decode()
        if t == b':':
            return int(rest)
        if t in (b'$', b'='):
            n = int(rest)
            if n < 0:
                return None
            d = f.read(n + 2)
            raw.extend(d)
            return d[:-2].decode()
        if t in (b'*', b'~', b'>'):
            n = int(rest)
            return None if n < 0 else [one() for _ in range(n)]
        if t == b'%':
            n = int(rest)
            return [one() for _ in range(2 * n)]
        if t == b'_':
            return None
        if t in (b'#',):
            return rest == b't'
        if t == b',':
            return float(rest)
        raise ValueError(l)
    return one(), bytes(raw)

def command(sock_file, sock, *args):
    req = b'*%d\r\n' % len(args) + b''.join(b'$%d\r\n%s\r\n' % (len(a), a) for a in (x.encode() for x in args))
    sock.sendall(req)
    return read_reply(sock_file)

def strip_header(raw):
    """Drops the first header line (`*1\\r\\n`, `%1\\r\\n`)."""
    return raw[raw.index(b'\r\n') + 2:]

def strip_name(raw):
    """Drops a leading bulk string (the command name in a DOCS map)."""
    n_end = raw.index(b'\r\n')
    n = int(raw[1:n_end])
    return raw[n_end + 2 + n + 2:]

def meta(entry):
    name, arity, flags, first, last, step = entry[:6]
    subs = entry[9] if len(entry) > 9 and entry[9] else []
    return {
        "name": name, "arity": arity, "flags": flags,
        "first_key": first, "last_key": last, "step": step,
        "acl_categories": entry[6],
        "subcommands": [meta(s) for s in subs],
    }

def main():
    server = sys.argv[1] if len(sys.argv) > 1 else "redis-server"
    port = 17000 + os.getpid() % 1000
    d = tempfile.mkdtemp()
    p = subprocess.Popen([server, "--port", str(port), "--save", "", "--dir", d],
                         stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                s = socket.create_connection(("127.0.0.1", port)); break
            except OSError:
                time.sleep(0.05)
        f2 = s.makefile("rb")
        s3 = socket.create_connection(("127.0.0.1", port)); f3 = s3.makefile("rb")
        command(f3, s3, "HELLO", "3")
        names, _ = command(f2, s, "COMMAND", "LIST")
        out = []
        for name in sorted(n for n in names if "|" not in n):
            info, info2 = command(f2, s, "COMMAND", "INFO", name)
            _, info3 = command(f3, s3, "COMMAND", "INFO", name)
            _, docs2 = command(f2, s, "COMMAND", "DOCS", name)
            _, docs3 = command(f3, s3, "COMMAND", "DOCS", name)
            m = meta(info[0])
            m["info2"] = strip_header(info2).decode("latin-1")
            m["info3"] = strip_header(info3).decode("latin-1")
            m["docs2"] = strip_name(strip_header(docs2)).decode("latin-1")
            m["docs3"] = strip_name(strip_header(docs3)).decode("latin-1")
            out.append(m)
        version, _ = command(f2, s, "INFO", "server")
        dest = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "server", "src", "cmd", "redis_commands.json")
        with open(dest, "w") as fh:
            json.dump({"source": [l for l in version.splitlines() if l.startswith("redis_version")][0],
                       "commands": out}, fh, indent=0, sort_keys=True)
        print(f"wrote {len(out)} commands to {dest}")
    finally:
        p.terminate(); p.wait()

main()
