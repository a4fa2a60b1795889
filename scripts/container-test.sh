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

NUT_IMAGE=${NUT_IMAGE:-localhost/amber-nutcracker:container-test}
METRICS_PORT=${METRICS_PORT:-16391}
COMPOSE=(podman-compose -p "$PROJECT" -f "$ROOT/docker/compose.cluster.yaml")
export AMBER_IMAGE=$IMAGE NUTCRACKER_IMAGE=$NUT_IMAGE AMBER_PROXY_PORT=$PROXY_PORT

# Removes what this script creates. Never touches the base image or other
# containers: only the names, project and tags above.
cleanup() {
  set +e
  podman rm -f -v "$NAME" >/dev/null 2>&1
  local c
  for c in $(podman ps -a --filter "label=io.podman.compose.project=$PROJECT" --format '{{.Names}}'); do
    podman rm -f -v "$c" >/dev/null 2>&1
  done
  podman network rm -f "${PROJECT}_default" >/dev/null 2>&1
  podman rmi -f "$IMAGE" "$NUT_IMAGE" >/dev/null 2>&1
  # Kept on purpose: the base image, podman's layer cache of the build steps
  # and the cargo cache mounts, so a rerun is fast (`podman image prune`
  # reclaims the layers; `podman system reset` everything).
  return 0
}
on_exit() {
  local rc=$?
  if ((rc)); then
    echo "---- diagnostics (exit $rc) ----" >&2
    podman ps -a >&2 || true
    podman logs --tail 30 "$NAME" >&2 2>/dev/null || true
    for c in $(podman ps -a --filter "label=io.podman.compose.project=$PROJECT" --format '{{.Names}}' 2>/dev/null); do
      echo "-- logs of $c" >&2; podman logs --tail 20 "$c" >&2 2>/dev/null || true
    done
  fi
  if [[ ${KEEP:-0} == 1 ]]; then
    log "KEEP=1: containers and images left in place"
  else
    cleanup
  fi
  log "total $((SECONDS - START))s, exit $rc"
}

# Polls `cmd...` (bounded) until its output equals `want`.
wait_for() {
  local want=$1 tries=$2; shift 2
  local out=""
  for ((i = 0; i < tries; i++)); do
    out=$("$@" 2>/dev/null || true)
    [[ $out == "$want" ]] && return 0
    sleep 0.5
  done
  echo "waited for '$want' from '$*', last output: '$out'" >&2
  return 1
}

cleanup   # a previous run killed half-way (or KEEP=1) left things behind
trap on_exit EXIT

# ---- 2. the image ----
log "build $IMAGE from docker/Dockerfile (context: the repository)"
t podman build --format docker -f "$ROOT/docker/Dockerfile" -t "$IMAGE" "$ROOT"
[[ $(podman image inspect --format '{{.Config.User}}' "$IMAGE") == amber ]] || fail "image does not run as the amber user"
[[ -n $(podman image inspect --format '{{.Config.Healthcheck}}' "$IMAGE") ]] || fail "image has no HEALTHCHECK"
podman run --rm "$IMAGE" --version | grep -q '^Amber server' || fail "amber-server --version"

# ---- 3. one node: published port, tmpfs arena, env + args overrides ----
log "run $NAME on 127.0.0.1:$PORT with a tmpfs arena on /pmem"
t podman run -d --name "$NAME" \
  -p "127.0.0.1:$PORT:6379" -p "127.0.0.1:$METRICS_PORT:9379" \
  --tmpfs /pmem:rw,size=300m,mode=1777 -e AMBER_PMEM_PATH=/pmem/amber.arena \
  -e AMBER_PMEM_SIZE=256mb -e AMBER_DRAM_BUDGET=64mb -e AMBER_PERSISTENCE=none \
  "$IMAGE" --metrics-port 9379 >/dev/null
wait_for PONG 60 redis-cli -p "$PORT" ping || fail "no PONG on the published port"
echo "redis-cli -p $PORT ping -> PONG"
[[ $(redis-cli -p "$PORT" set container:hello world) == OK ]] || fail "SET through the published port"
[[ $(redis-cli -p "$PORT" get container:hello) == world ]] || fail "GET through the published port"
echo "SET/GET through 127.0.0.1:$PORT -> world"
[[ $(podman exec "$NAME" id -u) == 10001 ]] || fail "server does not run as uid 10001"
podman exec "$NAME" test -f /pmem/amber.arena || fail "no arena on the tmpfs"
# The HEALTHCHECK (podman runs it on demand: there is no systemd timer here).
t podman healthcheck run "$NAME" || fail "healthcheck did not pass"
health=$(podman inspect --format '{{.State.Healthcheck.Status}}' "$NAME" 2>/dev/null \
  || podman inspect --format '{{.State.Health.Status}}' "$NAME")
[[ $health == healthy ]] || fail "health status '$health'"
echo "healthcheck -> $health"
# Metrics through the published metrics port.
metrics=$(curl -sf "http://127.0.0.1:$METRICS_PORT/metrics") || fail "metrics endpoint"
grep -q '^amber_commands_total{cmd="set"} 1$' <<<"$metrics" || fail "metrics: no SET counted"
grep -q '^amber_dram_budget_bytes 67108864$' <<<"$metrics" || fail "metrics: AMBER_DRAM_BUDGET not applied"
echo "metrics on 127.0.0.1:$METRICS_PORT -> amber_commands_total{cmd=\"set\"} 1"
# SIGTERM ends the server cleanly (PID 1 is amber-server itself).
t podman stop -t 20 "$NAME" >/dev/null
code=$(podman inspect --format '{{.State.ExitCode}}' "$NAME")
[[ $code == 0 ]] || fail "exit code $code after podman stop"
podman rm -f -v "$NAME" >/dev/null

# ---- 4. three shards behind twemproxy with podman-compose ----
log "build $NUT_IMAGE and bring up compose.cluster.yaml (project $PROJECT)"
t podman build --format docker -t "$NUT_IMAGE" "$ROOT/docker/nutcracker" >/dev/null
t "${COMPOSE[@]}" up -d --no-build >/dev/null
# nutcracker answers PING itself: wait for a write that reaches a shard.
wait_for OK 120 redis-cli -p "$PROXY_PORT" set cluster:probe 1 || fail "no write through the proxy"
n=300
ok=$(for ((i = 0; i < n; i++)); do echo "SET cluster:key:$i value-$i"; done \
  | redis-cli -p "$PROXY_PORT" | grep -c '^OK$' || true)
[[ $ok == "$n" ]] || fail "$ok of $n SETs through the proxy answered OK"
got=$(for ((i = 0; i < n; i++)); do echo "GET cluster:key:$i"; done \
  | redis-cli -p "$PROXY_PORT" | grep -c '^value-' || true)
[[ $got == "$n" ]] || fail "$got of $n keys read back through the proxy"
echo "wrote and read back $n keys through the proxy on 127.0.0.1:$PROXY_PORT"
# Each shard holds a share (asked from inside each shard's container).
total=0
for s in amber-1 amber-2 amber-3; do
  c=$(podman ps --filter "label=io.podman.compose.project=$PROJECT" \
        --filter "label=com.docker.compose.service=$s" --format '{{.Names}}' | head -1)
  [[ -n $c ]] || fail "no container for $s"
  held=$(for ((i = 0; i < n; i++)); do echo "GET cluster:key:$i"; done \
    | podman exec -i "$c" redis-cli | grep -c '^value-' || true)
  echo "$s ($c): $held keys"
  ((held > 0)) || fail "$s holds no keys"
  total=$((total + held))
done
((total == n)) || fail "shards hold $total keys in all, expected $n"
# Teardown is the EXIT trap's: `podman rm -f -v` per container, because
# podman-compose 1.0.3's `down -v` leaves the anonymous /data volumes behind.
log "PASS"
