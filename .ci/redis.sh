#!/usr/bin/env bash
# Starts a throwaway Redis server for the tests: 127.0.0.1 only, a free port, its data in a temp directory.
#
#   eval "$(.ci/redis.sh start)"   # prints: export FIBERPOOL_TEST_REDIS_URL=redis://127.0.0.1:PORT; export FIBERPOOL_REDIS_DIR=...
#   ...run the tests...
#   .ci/redis.sh stop              # stops the server of $FIBERPOOL_REDIS_DIR and deletes the directory
#
# Installs Debian's `redis-server` package when `redis-server` is missing (needs root or sudo, and apt-get). The
# package's own service is not used (nor started at install): this server is daemonized with its pid file, log and
# data in the temp directory. Everything but the `export` lines goes to stderr, so `eval "$(...)"` only sees those.
set -euo pipefail

log() { echo "redis.sh: $*" >&2; }

find_bin() {
  local name="$1" candidate
  if command -v "$name" >/dev/null 2>&1; then command -v "$name"; return 0; fi
  for candidate in /usr/bin/"$name" /usr/local/bin/"$name"; do
    [ -x "$candidate" ] && { echo "$candidate"; return 0; }
  done
  return 1
}

install_redis() {
  if ! command -v apt-get >/dev/null 2>&1; then
    log "redis-server not found and apt-get is not available: install Redis yourself"
    return 1
  fi
  log "installing Redis with apt-get (redis-server not found)"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq >&2
  # the package's post-install would start the system-wide service on port 6379: a policy-rc.d that refuses
  # service starts (Debian's documented switch, exit 101) keeps it stopped, and is removed again afterwards
  local policy=/usr/sbin/policy-rc.d added=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null && $sudo chmod 755 "$policy" && added=1
  fi
  local status=0
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends redis-server >&2 || status=$?
  [ "$added" -eq 1 ] && $sudo rm -f "$policy"
  return "$status"
}

free_port() {
  node -e 'const s=require("node:net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})' 2>/dev/null ||
    python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1]);s.close()'
}

start() {
  local server cli
  if ! server="$(find_bin redis-server)" || ! cli="$(find_bin redis-cli)"; then
    install_redis
    server="$(find_bin redis-server)"
    cli="$(find_bin redis-cli)"
  fi

  local dir port
  dir="$(mktemp -d "${TMPDIR:-/tmp}/fiberpool-redis.XXXXXX")"
  port="$(free_port)"

  log "starting $("$server" --version | cut -d' ' -f1-3) in $dir"
  # no persistence (a throwaway server), loopback only, no unix socket
  "$server" --bind 127.0.0.1 --port "$port" --dir "$dir" --daemonize yes --pidfile "$dir/redis.pid" \
    --logfile "$dir/server.log" --save "" --appendonly no --protected-mode yes --unixsocket "" >&2 ||
    { cat "$dir/server.log" >&2 2>/dev/null; return 1; }

  local i
  for i in $(seq 1 100); do
    if [ "$("$cli" -h 127.0.0.1 -p "$port" ping 2>/dev/null)" = "PONG" ]; then
      log "Redis listening on 127.0.0.1:$port, data in $dir (stop: .ci/redis.sh stop)"
      echo "export FIBERPOOL_TEST_REDIS_URL=redis://127.0.0.1:$port"
      echo "export FIBERPOOL_REDIS_DIR=$dir"
      return 0
    fi
    sleep 0.1
  done
  log "Redis did not answer on 127.0.0.1:$port within 10 s"
  cat "$dir/server.log" >&2 2>/dev/null || true
  return 1
}

stop() {
  local dir="${1:-${FIBERPOOL_REDIS_DIR:-}}" pid
  if [ -z "$dir" ] || [ ! -f "$dir/redis.pid" ]; then
    log "nothing to stop (FIBERPOOL_REDIS_DIR is not set or has no server)"
    return 0
  fi
  pid="$(cat "$dir/redis.pid")"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
  rm -rf "$dir"
  log "stopped and removed $dir"
}

case "${1:-start}" in
  start) start ;;
  stop) stop "${2:-}" ;;
  *) echo "usage: $0 start|stop [dir]" >&2; exit 2 ;;
esac
