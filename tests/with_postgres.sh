#!/usr/bin/env bash
# Run a command with a throwaway PostgreSQL server on a loopback port, then stop it.
# Exports SKBIG_TEST_POSTGRES_URL for the tests that need a shared Optuna storage.
# Installs PostgreSQL with apt-get when it is missing and we are root.
set -euo pipefail

find_bin() {
  for dir in /usr/lib/postgresql/*/bin; do
    [ -x "$dir/$1" ] && { echo "$dir/$1"; return 0; }
  done
  command -v "$1" 2>/dev/null || return 1
}

if ! find_bin initdb >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "with_postgres: installing PostgreSQL (apt-get)" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) || true
fi

INITDB=$(find_bin initdb || true)
PG_CTL=$(find_bin pg_ctl || true)
if [ -z "$INITDB" ] || [ -z "$PG_CTL" ]; then
  echo "with_postgres: PostgreSQL not available; tests marked 'postgres' will be skipped" >&2
  exec "$@"
fi

DATA=$(mktemp -d /tmp/skbig-pg.XXXXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
RUN_AS=()
if [ "$(id -u)" = 0 ]; then
  chown postgres "$DATA"
  RUN_AS=(runuser -u postgres --)
fi
cleanup() {
  "${RUN_AS[@]}" "$PG_CTL" -D "$DATA/db" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$DATA"
}
trap cleanup EXIT
"${RUN_AS[@]}" "$INITDB" -D "$DATA/db" -A trust -U skbig >/dev/null
"${RUN_AS[@]}" "$PG_CTL" -D "$DATA/db" -l "$DATA/server.log" -w \
  -o "-p $PORT -k $DATA -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
export SKBIG_TEST_POSTGRES_URL="postgresql://skbig@127.0.0.1:$PORT/postgres"
echo "with_postgres: PostgreSQL on 127.0.0.1:$PORT" >&2
set +e
"$@"
status=$?
exit $status
