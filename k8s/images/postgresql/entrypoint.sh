#!/bin/sh
# PostgreSQL as the official image starts it, for the variables the chart sets: on an empty
# PGDATA, initdb with POSTGRES_USER as the superuser and POSTGRES_PASSWORD as its password,
# password authentication from the network, and POSTGRES_DB created; then postgres in the
# foreground. Arguments are passed to postgres (e.g. -c max_connections=200).
set -eu
: "${PGDATA:=/var/lib/postgresql/data}"
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
if [ -z "${POSTGRES_PASSWORD:-}" ]; then
  echo "POSTGRES_PASSWORD is required" >&2
  exit 1
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  mkdir -p "$PGDATA"
  chmod 700 "$PGDATA"
  umask 077
  pwfile="$(mktemp)"
  printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
  initdb --pgdata="$PGDATA" --username="$POSTGRES_USER" --pwfile="$pwfile" \
    --encoding=UTF8 --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256
  rm -f "$pwfile"
  printf "listen_addresses = '*'\n" >> "$PGDATA/postgresql.conf"
  printf 'host all all all scram-sha-256\n' >> "$PGDATA/pg_hba.conf"
  if [ "$POSTGRES_DB" != "postgres" ]; then
    # Unix socket only while the database is created: nothing connects before it exists.
    pg_ctl --pgdata="$PGDATA" --wait --options="-c listen_addresses=''" start
    createdb --username="$POSTGRES_USER" --maintenance-db=postgres "$POSTGRES_DB"
    pg_ctl --pgdata="$PGDATA" --wait --mode=fast stop
  fi
fi
exec postgres -D "$PGDATA" "$@"
