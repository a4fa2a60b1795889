#!/usr/bin/env bash
# Runs Amber's whole test suite on a fresh Debian machine.
#
# Installs what the tests need with apt when it is missing (redis-server and
# redis-tools: the tests compare Amber with a real Redis and drive it with
# redis-cli and redis-benchmark), then runs `cargo test --workspace`.
# Extra arguments go to cargo test (e.g. `scripts/test.sh -p amber-tests`).
set -euo pipefail

cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || need+=(redis-tools)
command -v redis-benchmark >/dev/null 2>&1 || need+=(redis-tools)
command -v cc >/dev/null 2>&1 || need+=(build-essential)
command -v make >/dev/null 2>&1 || need+=(build-essential)

if [ ${#need[@]} -gt 0 ]; then
    # Deduplicate (redis-tools may be listed twice).
    mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
    echo "scripts/test.sh: installing ${need[*]}" >&2
    if [ "$(id -u)" -eq 0 ]; then
        sudo=()
    elif command -v sudo >/dev/null 2>&1; then
        sudo=(sudo)
    else
        echo "scripts/test.sh: need root or sudo to install ${need[*]}" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update
    "${sudo[@]}" apt-get install -y --no-install-recommends "${need[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
    echo "scripts/test.sh: cargo not found; install Rust from https://rustup.rs" >&2
    exit 1
fi

# A Debian redis-server package starts a system service on 6379; the tests
# start their own servers on free ports and do not need it.
exec cargo test --workspace "$@"
