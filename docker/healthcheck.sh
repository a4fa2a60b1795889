#!/bin/sh
# HEALTHCHECK of the Amber image: a real PING on the configured port, with the
# password when one is set through the environment.
port="${AMBER_PORT:-6379}"
if [ -n "${AMBER_REQUIREPASS:-}" ]; then
  export REDISCLI_AUTH="$AMBER_REQUIREPASS"
fi
[ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" = "PONG" ]
