#!/usr/bin/env bash
# Starts a throwaway PostgreSQL cluster for the tests: 127.0.0.1 only, a free port, a temp directory.
#
#   eval "$(.ci/postgres.sh start)"   # prints: export FIBERPOOL_TEST_PG_URL=postgres://...; export FIBERPOOL_PG_DIR=...
#   ...run the tests...
#   .ci/postgres.sh stop              # stops the cluster in $FIBERPOOL_PG_DIR and deletes the directory
#
# Installs Debian's `postgresql` package when initdb/pg_ctl are missing (needs root and apt-get). When run as
# root, the server runs as the `postgres` user (created by the package, or here) because PostgreSQL refuses
# to run as root. Everything but the `export` lines goes to stderr, so `eval "$(...)"` only sees those.
set -euo pipefail

log() { echo "postgres.sh: $*" >&2; }

find_bin() {
  local name="$1" candidate
  if command -v "$name" >/dev/null 2>&1; then command -v "$name"; return 0; fi
  for candidate in /usr/lib/postgresql/*/bin/"$name"; do
    [ -x "$candidate" ] && { echo "$candidate"; return 0; }
  done
  return 1
}

install_postgres() {
  if ! command -v apt-get >/dev/null 2>&1; then
    log "initdb/pg_ctl not found and apt-get is not available: install PostgreSQL yourself"
    return 1
  fi
  log "installing PostgreSQL with apt-get (initdb/pg_ctl not found)"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends postgresql >&2
}

free_port() {
  node -e 'const s=require("node:net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})' 2>/dev/null ||
    python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1]);s.close()'
}

# Runs a command as the cluster's owner: `postgres` when we are root, ourselves otherwise.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    if command -v runuser >/dev/null 2>&1; then runuser -u postgres -- "$@"; else su postgres -s /bin/sh -c "$(printf '%q ' "$@")"; fi
  else
    "$@"
  fi
}

start() {
  local initdb pg_ctl
  if ! initdb="$(find_bin initdb)" || ! pg_ctl="$(find_bin pg_ctl)"; then
    install_postgres
    initdb="$(find_bin initdb)"
    pg_ctl="$(find_bin pg_ctl)"
  fi
  if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
    useradd --system --no-create-home --shell /usr/sbin/nologin postgres
  fi

  local dir port user db password
  dir="$(mktemp -d "${TMPDIR:-/tmp}/fiberpool-pg.XXXXXX")"
  chmod 755 "$dir"
  [ "$(id -u)" -eq 0 ] && chown postgres "$dir"
  port="$(free_port)"
  user="fiberpool"
  db="fiberpool_test"
  password="fiberpool-$RANDOM$RANDOM"
  printf '%s\n' "$password" >"$dir/pwfile"
  [ "$(id -u)" -eq 0 ] && chown postgres "$dir/pwfile"

  log "initdb in $dir/data ($("$initdb" --version))"
  as_owner "$initdb" -D "$dir/data" -U "$user" --pwfile="$dir/pwfile" -A scram-sha-256 -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 ||
    { cat "$dir/initdb.log" >&2; return 1; }
  rm -f "$dir/pwfile"

  # sockets in the temp dir (not /var/run/postgresql, which may not exist); TCP on loopback only
  as_owner "$pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
    -o "-h 127.0.0.1 -p $port -k $dir -c max_connections=200 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    start >&2 || { cat "$dir/server.log" >&2; return 1; }

  # the initdb superuser owns the default `postgres` database; create the test database over the socket
  local bindir
  bindir="$(dirname "$(readlink -f "$initdb")")"
  as_owner env PGPASSWORD="$password" "$bindir/createdb" -h "$dir" -p "$port" -U "$user" "$db" >&2 ||
    { cat "$dir/server.log" >&2; return 1; }

  log "PostgreSQL listening on 127.0.0.1:$port, data in $dir (stop: .ci/postgres.sh stop)"
  echo "export FIBERPOOL_TEST_PG_URL=postgres://$user:$password@127.0.0.1:$port/$db"
  echo "export FIBERPOOL_PG_DIR=$dir"
}

stop() {
  local dir="${1:-${FIBERPOOL_PG_DIR:-}}" pg_ctl
  if [ -z "$dir" ] || [ ! -d "$dir/data" ]; then
    log "nothing to stop (FIBERPOOL_PG_DIR is not set or has no cluster)"
    return 0
  fi
  pg_ctl="$(find_bin pg_ctl)"
  as_owner "$pg_ctl" -D "$dir/data" -m immediate -w stop >&2 || true
  rm -rf "$dir"
  log "stopped and removed $dir"
}

case "${1:-start}" in
  start) start ;;
  stop) stop "${2:-}" ;;
  *) echo "usage: $0 start|stop [dir]" >&2; exit 2 ;;
esac
