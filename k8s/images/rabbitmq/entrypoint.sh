#!/bin/sh
# RabbitMQ with the management plugin, in the foreground, logging to stdout, as the official
# image runs it: RABBITMQ_DEFAULT_USER / RABBITMQ_DEFAULT_PASS (and RABBITMQ_DEFAULT_VHOST) name
# the user created on first boot. Everything it writes lives under RABBITMQ_HOME_DIR (the
# volume): the Erlang cookie, the generated config and the database.
set -eu
home="${RABBITMQ_HOME_DIR:-/var/lib/rabbitmq}"
mkdir -p "$home"
export HOME="$home"
export RABBITMQ_MNESIA_BASE="$home/mnesia"
export RABBITMQ_CONFIG_FILE="$home/rabbitmq.conf"
export RABBITMQ_LOGS=-
export RABBITMQ_NODENAME="${RABBITMQ_NODENAME:-rabbit@localhost}"
umask 077
{
  echo "listeners.tcp.default = 5672"
  echo "management.tcp.port = 15672"
  if [ -n "${RABBITMQ_DEFAULT_USER:-}" ]; then
    echo "default_user = $RABBITMQ_DEFAULT_USER"
    echo "default_pass = ${RABBITMQ_DEFAULT_PASS:?RABBITMQ_DEFAULT_PASS is required with RABBITMQ_DEFAULT_USER}"
  fi
  echo "default_vhost = ${RABBITMQ_DEFAULT_VHOST:-/}"
} > "$RABBITMQ_CONFIG_FILE"
exec rabbitmq-server "$@"
