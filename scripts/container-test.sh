#!/usr/bin/env bash
# scripts/container-test.sh — the real container test (slow; a separate step of the test command).
#
# 1. prepares podman on a registry-less Debian 12 machine (the recipe of
#    shared/tools/container-smoke.sh): runc, lowered default ulimits, and a local
#    `debian:bookworm-slim` base image made with debootstrap + `podman import`;
# 2. builds docker/Dockerfile with the repository as context;
# 3. runs the image with a published loopback port and a tmpfs arena:
#    PING -> PONG, SET/GET, and the HEALTHCHECK reports healthy;
# 4. brings up docker/compose.cluster.yaml with podman-compose (three shards +
#    nutcracker) and writes/reads keys through the proxy;
# 5. removes every container, network and image it made, even on failure
#    (the base image and podman's build cache are kept so a rerun is fast).
#
# Usage: scripts/container-test.sh [prepare]     (`prepare` stops after step 1)
# Env: BASE_IMAGE (localhost/debian:bookworm-slim), ROOTFS (/tmp/amber-rootfs),
#      PORT (16390), PROXY_PORT (22121), KEEP=1 keeps containers for debugging.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
ROOTFS=${ROOTFS:-/tmp/amber-rootfs}
BASE_IMAGE=${BASE_IMAGE:-localhost/debian:bookworm-slim}
IMAGE=${IMAGE:-localhost/amber:container-test}
NAME=${NAME:-amber-container-test}
PORT=${PORT:-16390}
PROXY_PORT=${PROXY_PORT:-22121}
PROJECT=${PROJECT:-amber-ctest}
export DEBIAN_FRONTEND=noninteractive
START=$SECONDS
t() { local s=$SECONDS; "$@"; echo "[time] $((SECONDS - s))s: $*" >&2; }
log() { echo "== [$((SECONDS - START))s] $*" >&2; }
fail() { echo "FAIL: $*" >&2; exit 1; }

prepare() {
  # Packages. iptables: netavark needs it for bridge networks ("netavark: No such
  # file or directory" without it; not pulled by --no-install-recommends).
  # redis-tools: redis-cli on the host.
  local need=() p
  for p in podman runc netavark aardvark-dns iptables fuse-overlayfs debootstrap podman-compose redis-tools; do
    dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
  done
  if ((${#need[@]})); then t apt-get install -y --no-install-recommends "${need[@]}"; fi

  # Engine config: runc (crun rejects the hybrid cgroup setup) and default ulimits
  # within this machine's hard limits (root lacks CAP_SYS_RESOURCE).
  local hn hu nofile nproc conf
  hn=$(ulimit -Hn); hu=$(ulimit -Hu)
  [[ $hn == unlimited ]] && hn=16384; [[ $hu == unlimited ]] && hu=16384
  nofile=$(( hn < 16384 ? hn : 16384 )); nproc=$(( hu / 2 < 8192 ? hu / 2 : 8192 ))
  mkdir -p /etc/containers
  conf="# written by amber scripts/container-test.sh (same recipe as container-smoke.sh)
[containers]
default_ulimits = [\"nofile=${nofile}:${nofile}\", \"nproc=${nproc}:${nproc}\"]
[engine]
runtime = \"runc\""
  if [[ "$(cat /etc/containers/containers.conf 2>/dev/null)" != "$conf" ]]; then
    printf '%s\n' "$conf" > /etc/containers/containers.conf
  fi

  # Local base image: no registry is reachable, so debootstrap from apt's mirror.
  if ! podman image exists "$BASE_IMAGE"; then
    local mirror
    mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
    [[ -n $mirror ]] || mirror=$(awk '$1=="deb" {print $2; exit}' /etc/apt/sources.list)
    if [[ ! -x $ROOTFS/usr/bin/apt-get ]]; then
      rm -rf "$ROOTFS"
      t debootstrap --variant=minbase bookworm "$ROOTFS" "$mirror" >/dev/null
    fi
    # The host's binary apt sources (not deb-src) and its snapshot options.
    if ls /etc/apt/sources.list.d/*.sources >/dev/null 2>&1; then
      local f
      for f in /etc/apt/sources.list.d/*.sources; do
        grep -q '^Types: deb$' "$f" && cp "$f" "$ROOTFS/etc/apt/sources.list.d/"
      done
      rm -f "$ROOTFS/etc/apt/sources.list"
    fi
    printf 'Acquire::Check-Valid-Until "false";\nAcquire::Check-Date "false";\n' \
      > "$ROOTFS/etc/apt/apt.conf.d/99ci-snapshot"
    # The host's extra CAs (an egress proxy's, say), trusted once a build installs
    # ca-certificates. minbase has no such directory yet: create it.
    mkdir -p "$ROOTFS/usr/local/share/ca-certificates"
    cp /usr/local/share/ca-certificates/*.crt "$ROOTFS/usr/local/share/ca-certificates/" 2>/dev/null || true
    rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/*
    t sh -c "tar -C '$ROOTFS' -c . | podman import - '$BASE_IMAGE' >/dev/null"
  fi
  # So an unchanged `FROM debian:bookworm-slim` resolves locally.
  podman tag "$BASE_IMAGE" docker.io/library/debian:bookworm-slim
}

log "prepare podman and the local base image"
prepare
[[ ${1:-} == prepare ]] && { log "prepared"; exit 0; }
