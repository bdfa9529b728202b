#!/usr/bin/env bash
# Run CMD... against a throwaway PostgreSQL server: a fresh cluster in a temp dir, trust auth,
# listening on a free port of 127.0.0.1 (and a unix socket in the temp dir). CMD sees
#   QMLAPP_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:PORT/postgres
# and, for fault injection (the soak restarts the server: `pg_ctl -D DATA restart`, as user postgres
# when root), QMLAPP_TEST_POSTGRES_DATA, QMLAPP_TEST_POSTGRES_BINDIR and QMLAPP_TEST_POSTGRES_LOG.
# The server is stopped and its directory removed however CMD ends. Installs Debian's
# `postgresql` package first when no /usr/lib/postgresql/*/bin/initdb exists.
#
#   scripts/with-postgres.sh .venv/bin/python -m pytest -q
set -euo pipefail

if [ "$#" -eq 0 ]; then
    echo "usage: $0 CMD [ARGS...]" >&2
    exit 2
fi

find_bindir() {
    local d
    # Newest major version first.
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -V -r); do
        if [ -x "$d/initdb" ]; then
            echo "$d"
            return 0
        fi
    done
    return 1
}

if ! BINDIR=$(find_bindir); then
    echo "with-postgres: installing Debian's postgresql package" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq postgresql >/dev/null
    BINDIR=$(find_bindir) || { echo "with-postgres: no initdb after installing postgresql" >&2; exit 1; }
fi

# initdb and postgres refuse to run as root: run them as the `postgres` user then.
if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
    as_pg() { runuser -u postgres -- "$@"; }
else
    as_pg() { "$@"; }
fi

TMPDIR_PG=$(mktemp -d "${TMPDIR:-/tmp}/qmlapp-pg.XXXXXX")
chmod 755 "$TMPDIR_PG"
[ "$(id -u)" -eq 0 ] && chown postgres: "$TMPDIR_PG"
DATA="$TMPDIR_PG/data"
LOG="$TMPDIR_PG/server.log"

cleanup() {
    local rc=$?
    if [ -f "$DATA/postmaster.pid" ]; then
        as_pg "$BINDIR/pg_ctl" -D "$DATA" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$TMPDIR_PG"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

as_pg "$BINDIR/initdb" -D "$DATA" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$TMPDIR_PG/initdb.log" 2>&1 \
    || { cat "$TMPDIR_PG/initdb.log" >&2; exit 1; }

free_port() {
    # Ask the kernel for a free TCP port on 127.0.0.1 (small race until postgres binds it; retried below).
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

started=""
for _ in 1 2 3 4 5; do
    PORT=$(free_port)
    if as_pg "$BINDIR/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $PORT -c unix_socket_directories=$TMPDIR_PG \
            -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300 \
            -c shared_buffers=64MB -c timezone=UTC" start >/dev/null; then
        started=1
        break
    fi
done
if [ -z "$started" ]; then
    echo "with-postgres: the server did not start:" >&2
    cat "$LOG" >&2 || true
    exit 1
fi

export QMLAPP_TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:$PORT/postgres"
export QMLAPP_TEST_POSTGRES_DATA="$DATA" QMLAPP_TEST_POSTGRES_BINDIR="$BINDIR" QMLAPP_TEST_POSTGRES_LOG="$LOG"
echo "with-postgres: $("$BINDIR/psql" -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -Atc 'SELECT version()')" >&2
echo "with-postgres: QMLAPP_TEST_POSTGRES_URL=$QMLAPP_TEST_POSTGRES_URL" >&2

set +e
"$@"
rc=$?
set -e
exit "$rc"
