#!/usr/bin/env python3
"""Generates server/src/config/redis_directives.rs from Redis's config.c.

Amber accepts every Redis 7.0 directive with Redis's kind, bounds, default,
flags and validation, so tools written for Redis (its own test suite, client
libraries, operators' redis.conf files) work unchanged. Rather than copy the
table by hand, this script reads `standardConfig static_configs[]` and the
`configEnum` arrays of Redis's source and writes them as Rust.

The special directives (save, bind, dir, client-output-buffer-limit,
oom-score-adj-values, notify-keyspace-events, replicaof,
latency-tracking-info-percentiles) have hand-written parsers in
server/src/config/special.rs and are emitted here with their kind only.

Usage: tools/gen-redis-directives.py [/opt/redis-src/redis-7.0.15/src]
"""
import os
import re
import sys

SRC = sys.argv[1] if len(sys.argv) > 1 else "/opt/redis-src/redis-7.0.15/src"
OUT = os.path.join(os.path.dirname(__file__), "..", "server", "src", "config", "redis_directives.rs")

config_c = open(os.path.join(SRC, "config.c")).read()
server_h = open(os.path.join(SRC, "server.h")).read()

# Integer #defines from server.h (enough for enum values and defaults).
defines = {}
for m in re.finditer(r"^#define\s+([A-Z_0-9]+)\s+(.+?)(?:/\*.*)?$", server_h, re.M):
    defines[m.group(1)] = m.group(2).strip()

LIMITS = {
    "INT_MAX": 2**31 - 1, "INT_MIN": -(2**31), "UINT_MAX": 2**32 - 1,
    "LONG_MAX": 2**63 - 1, "LLONG_MAX": 2**63 - 1, "ULLONG_MAX": 2**64 - 1,
    "SSIZE_MAX": 2**63 - 1,
}

interned = {}


def cexpr(expr):
    """Evaluates a C integer constant expression (or interns an unknown name)."""
    e = expr.strip()
    if e in LIMITS:
        return LIMITS[e]
    if re.fullmatch(r"0[0-7]+", e):
        return int(e, 8)
    py = re.sub(r"(\d+)(?:ULL|ull|LL|ll|L|l|U|u)\b", r"\1", e)
    names = re.findall(r"[A-Za-z_][A-Za-z_0-9]*", py)
    for n in names:
        if n in LIMITS:
            py = re.sub(r"\b%s\b" % n, str(LIMITS[n]), py)
        elif n in defines:
            try:
                py = re.sub(r"\b%s\b" % n, str(cexpr(defines[n])), py)
            except Exception:
                return interned.setdefault(e, 1000 + len(interned))
        else:
            return interned.setdefault(e, 1000 + len(interned))
    try:
        return int(eval(py, {}, {}))
    except Exception:
        return interned.setdefault(e, 1000 + len(interned))


# Enum arrays.
enums = {}
for m in re.finditer(r"configEnum\s+(\w+)\[\]\s*=\s*\{(.*?)\n\};", config_c, re.S):
    items = re.findall(r'\{\s*"([^"]+)"\s*,\s*([^}]+?)\s*\}', m.group(2))
    enums[m.group(1)] = [(n, cexpr(v), v.strip()) for n, v in items]

table = re.search(r"standardConfig static_configs\[\] = \{(.*?)\n\};", config_c, re.S).group(1)


def split_args(s):
    out, depth, cur, q = [], 0, "", False
    for c in s:
        if c == '"':
            q = not q
        if not q and c == "(":
            depth += 1
        if not q and c == ")":
            depth -= 1
        if not q and depth == 0 and c == ",":
            out.append(cur.strip())
            cur = ""
            continue
        cur += c
    out.append(cur.strip())
    return out


def flags_of(expr):
    names = [f.strip() for f in expr.split("|")]
    return [n for n in names if n != "MODIFIABLE_CONFIG"]


def cstr(e):
    e = e.strip()
    if e == "NULL":
        return ""
    if e.startswith('"'):
        return bytes(e[1:-1], "utf-8").decode("unicode_escape")
    if e in defines:
        return cstr(defines[e])
    raise ValueError(e)


def rs_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


VALIDATORS = {
    "NULL": None,
    "isValidActiveDefrag": None,  # Debian's Redis has jemalloc: always valid.
    "isValidDBfilename": "Check::DbFilename",
    "isValidAOFfilename": "Check::AofFilename",
    "isValidAOFdirname": "Check::AofDirname",
    "isValidShutdownOnSigFlags": "Check::ShutdownFlags",
    "isValidAnnouncedHostname": "Check::Hostname",
    "isValidProcTitleTemplate": "Check::ProcTitle",
}

NUMTYPES = {
    "Int": ("I", False), "UInt": ("U", True), "ULong": ("U", False), "LongLong": ("I", False),
    "ULongLong": ("U", True), "SizeT": ("U", True), "SSizeT": ("I", False),
    "TimeT": ("I", False), "OffT": ("I", False), "Long": ("I", False),
}

entries = []
for m in re.finditer(r"create(\w+?)Config\((.*)\),\s*(?:/\*.*\*/)?\s*$", table, re.M):
    kind, args = m.group(1), split_args(m.group(2))
    name = cstr(args[0])
    alias = None if args[1] == "NULL" else cstr(args[1])
    flags = flags_of(args[2])
    fl = []
    for f, rs in [("IMMUTABLE_CONFIG", "IMMUTABLE"), ("SENSITIVE_CONFIG", "SENSITIVE"),
                  ("MULTI_ARG_CONFIG", "MULTI_ARG"), ("HIDDEN_CONFIG", "HIDDEN"),
                  ("PROTECTED_CONFIG", "PROTECTED"), ("DEBUG_CONFIG", "DEBUG"),
                  ("VOLATILE_CONFIG", "VOLATILE"), ("DENY_LOADING_CONFIG", "DENY_LOADING")]:
        if f in flags:
            fl.append("F::" + rs)
    flags_rs = fl[0] + "".join(".with(%s)" % f for f in fl[1:]) if fl else "F::NONE"
    if kind == "Bool":
        default = "yes" if cexpr(args[4]) else "no"
        k = "Kind::Bool"
    elif kind in ("String", "SDS"):
        default = cstr(args[5])
        v = VALIDATORS[args[6]]
        k = "Kind::Str(%s)" % (v if v else "Check::None")
    elif kind == "Enum":
        values = enums[args[3]]
        dexpr = args[5].strip()
        dval = cexpr(dexpr)
        default = next(n for n, v, _ in values if v == dval)
        v = VALIDATORS[args[6]]
        vals = ", ".join("(%s, %d)" % (rs_str(n), v_) for n, v_, _ in values)
        k = "Kind::Enum { values: &[%s], check: %s }" % (vals, v if v else "Check::None")
        if "MULTI_ARG_CONFIG" in flags:
            pass
    elif kind == "Special":
        default = None
        k = "Kind::Special(Special::%s)" % "".join(p.capitalize() for p in name.replace("-", " ").split())
    else:
        t, unsigned = NUMTYPES[kind]
        lo, hi, dflt = cexpr(args[3]), cexpr(args[4]), cexpr(args[6])
        nflags = args[7].strip()
        nf = []
        if "MEMORY_CONFIG" in nflags:
            nf.append("N::MEMORY")
        if "PERCENT_CONFIG" in nflags:
            nf.append("N::PERCENT")
        if "OCTAL_CONFIG" in nflags:
            nf.append("N::OCTAL")
        nf_rs = nf[0] + "".join(".with(%s)" % f for f in nf[1:]) if nf else "N::INTEGER"
        if "OCTAL" in nf_rs:
            default = "%o" % dflt
        elif dflt < 0 and "PERCENT" in nf_rs:
            default = "%d%%" % -dflt
        else:
            default = str(dflt)
        k = "Kind::Num { min: %d, max: %d, unsigned: %s, flags: %s }" % (
            lo, hi, "true" if unsigned else "false", nf_rs)
    entries.append((name, alias, flags_rs, k, default))

lines = [
    "// @generated by tools/gen-redis-directives.py from Redis 7.0.15's config.c. Do not edit.",
    "//! Redis 7.0's directives: names, aliases, kinds, bounds, defaults and flags.",
    "",
    "use super::directives::{Check, Directive, Kind, Special, DirectiveFlags as F, NumFlags as N};",
    "",
    "/// Every directive of Redis 7.0.15's `static_configs[]`, in its order.",
    "pub static REDIS_DIRECTIVES: &[Directive] = &[",
]
for name, alias, flags_rs, k, default in entries:
    lines.append("    Directive {")
    lines.append("        name: %s," % rs_str(name))
    lines.append("        alias: %s," % ("Some(%s)" % rs_str(alias) if alias else "None"))
    lines.append("        kind: %s," % k)
    lines.append("        default: %s," % (rs_str(default) if default is not None else "\"\""))
    lines.append("        flags: %s," % flags_rs)
    lines.append("        doc: \"\",")
    lines.append("    },")
lines.append("];")
open(OUT, "w").write("\n".join(lines) + "\n")
print("wrote %d directives to %s" % (len(entries), os.path.normpath(OUT)))
