#!/bin/sh
# Entrypoint of the Amber image, in the manner of the official redis image:
#   docker run amber                         -> amber-server /etc/amber/amber.conf
#   docker run amber --dram-budget 64mb      -> amber-server /etc/amber/amber.conf --dram-budget 64mb
#   docker run amber /my/amber.conf --port 7000
#   docker run amber redis-cli -h host ping  -> any other command runs as is
set -e
case "$1" in
  -v|--version|-h|--help) set -- amber-server "$@" ;;
  -*) set -- amber-server /etc/amber/amber.conf "$@" ;;
  *.conf) set -- amber-server "$@" ;;
esac
exec "$@"
