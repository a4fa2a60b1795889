#!/usr/bin/env bash
# Runs Redis 7.0's own Tcl unit tests against Amber in external-server mode
# (Redis's `runtest --host --port`), one fresh `amber-server` per test file,
# and prints ok/err/exception counts per file (logs in $OUT).
#
# The Redis source is Debian's (`apt-get source redis`, the same 7.0 as the
# redis-server the differential tests compare with), fetched once into
# $SRC through a temporary deb-src entry. Tests that use Redis's internal
# DEBUG subcommands (encodings: quicklist-packed-threshold, listpack,
# HTSTATS-KEY, ziplist...) or AOF files are skipped: Amber deliberately has
# no such internals. A test that hangs stops its file after $TIMEOUT s.
#
# Usage: tools/redis-suite.sh [AMBER_BIN] [unit/FILE ...]
#   (defaults: target/release/amber-server, every unit/*.tcl and unit/type/*.tcl)
# Needs tclsh (apt-get install tcl) and redis-tools (redis-cli).
set -euo pipefail
AMBER=$(realpath "${1:-target/release/amber-server}")
shift || true
SRC=${SRC:-/tmp/redis-src}
OUT=${OUT:-/tmp/redis-suite}
PORT=${PORT:-17890}
BASEPORT=${BASEPORT:-32000}
TIMEOUT=${TIMEOUT:-60}
if [ ! -d "$SRC"/tests ]; then
  mkdir -p "$SRC.dl"
  list=/etc/apt/sources.list.d/amber-redis-src.sources
  printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: bookworm\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' > "$list"
  apt-get update -qq -o Dir::Etc::sourcelist=/dev/null -o Dir::Etc::sourceparts=/etc/apt/sources.list.d
  (cd "$SRC.dl" && apt-get source --download-only -qq redis)
  rm -f "$list"
  tar -xzf "$SRC.dl"/redis_*.orig.tar.gz -C "$SRC.dl"
  rm -rf "$SRC" && mv "$SRC.dl"/redis-*/ "$SRC"
fi
cd "$SRC"
mkdir -p "$OUT"
SKIPS=()
while IFS= read -r name; do SKIPS+=(--skiptest "$name"); done < <(
  awk '/test \{/ {name=$0} /quicklist-packed-threshold|debug listpack|HTSTATS|loadaof|debug stringmatch|debug quicklist|debug change-repl-id|debug ziplist|debug replybuffer|debug set-active-expire|debug jmap|debug set-skip-checksum/ {print name}' \
    tests/unit/*.tcl tests/unit/type/*.tcl | sed -E 's/^\s*test \{(.*)\} \{.*$/\1/' | sort -u)
# "CONFIG sanity" sets every directive CONFIG GET * lists to its value and
# skips Redis's immutable ones; Amber's own (pmem-path, persistence,
# threads...) are immutable too and refused as Redis refuses its own.
SKIPS+=(--skiptest "CONFIG sanity")
FILES=("$@")
[ ${#FILES[@]} -gt 0 ] || mapfile -t FILES < <(ls tests/unit/*.tcl tests/unit/type/*.tcl | sed 's#tests/##; s#\.tcl$##' | grep -v 'list-common\|printver')
for f in "${FILES[@]}"; do
  dir=$(mktemp -d)
  "$AMBER" --port "$PORT" --dir "$dir" --persistence none --enable-debug-command yes --loglevel warning >"$dir/log" 2>&1 &
  pid=$!
  until [ "$(redis-cli -p "$PORT" ping 2>/dev/null)" = PONG ]; do sleep 0.1; done
  log="$OUT/$(echo "$f" | tr / _).log"
  timeout 900 ./runtest --host 127.0.0.1 --port "$PORT" --single "$f" --clients 1 \
    --timeout "$TIMEOUT" --baseport "$BASEPORT" "${SKIPS[@]}" >"$log" 2>&1 || true
  echo "$f ok=$(grep -ac 'ok.*\]:' "$log") err=$(grep -ac '\[.*err.*\]:' "$log") exception=$(grep -ac 'exception.*\]:' "$log") timeout=$(grep -ac 'TIMEOUT' "$log")"
  # A script that never ends keeps SIGTERM waiting, as on Redis.
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -rf "$dir"
done
