#!/usr/bin/env bash
# Install whatever the local stack and the tests need, and nothing that is already there:
#   - Debian packages: PostgreSQL, Redis, RabbitMQ, Prometheus, Java 17 and Maven (apt-get runs
#     only when one is missing; their system services are not started);
#   - the virtualenv .venv with `pip install -e '.[dev]'` (again whenever pyproject.toml or the
#     set of top-level packages changes);
#   - the Apache Kafka broker's jars, resolved from Maven Central with scripts/kafka/pom.xml into
#     ${XDG_CACHE_HOME:-$HOME/.cache}/realtimeorder/kafka/<version>/libs (KAFKA_LIBS_DIR overrides).
# Safe to run any number of times; with everything present it takes well under a second.
# Never reads stdin (CI=true works).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

log() { printf '[install] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---- Debian packages -----------------------------------------------------------------------------
APT_PACKAGES=(
  postgresql redis-server rabbitmq-server prometheus
  openjdk-17-jre-headless maven
  python3 python3-venv iproute2 ca-certificates wrk
)

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'; }

as_root() {
  if [[ $(id -u) -eq 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo -n "$@" || die "cannot run as root without a password prompt: $*"
  else
    die "missing packages need root: run as root or install sudo"
  fi
}

missing=()
for package in "${APT_PACKAGES[@]}"; do
  installed "$package" || missing+=("$package")
done
if ((${#missing[@]})); then
  command -v apt-get >/dev/null 2>&1 || die "missing ${missing[*]} and no apt-get (Debian 12 expected)"
  log "installing ${missing[*]}"
  # The stack runs its own servers on their usual ports: keep the packages' system services from
  # starting (and taking those ports) during installation.
  policy=/usr/sbin/policy-rc.d
  created_policy=""
  if [[ ! -e $policy ]]; then
    as_root sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 755 $policy"
    created_policy=1
  fi
  cleanup_policy() { [[ -z $created_policy ]] || as_root rm -f "$policy"; }
  trap cleanup_policy EXIT
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    "${missing[@]}" </dev/null
  cleanup_policy
  trap - EXIT
fi

# ---- Python virtualenv ---------------------------------------------------------------------------
PYTHON="${PYTHON:-python3}"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || die "$PYTHON is older than 3.11 (set PYTHON=/path/to/python3.11+)"

# The editable install maps the top-level packages it saw, so a new one needs a reinstall too.
stamp_input() {
  cat pyproject.toml
  for init in */__init__.py; do [[ -e $init ]] && echo "$init"; done
}
stamp="$(stamp_input | sha256sum | cut -c1-16)"
stamp_file=".venv/.installed-$stamp"
if [[ ! -x .venv/bin/python ]]; then
  log "creating .venv"
  "$PYTHON" -m venv .venv
fi
if [[ ! -e $stamp_file ]]; then
  log "pip install -e '.[dev]' (output in .venv/pip-install.log)"
  if ! {
    .venv/bin/python -m pip install --disable-pip-version-check --upgrade pip \
      && .venv/bin/python -m pip install --disable-pip-version-check -e '.[dev]'
  } </dev/null >.venv/pip-install.log 2>&1; then
    tail -n 40 .venv/pip-install.log >&2
    die "pip install failed (full output in .venv/pip-install.log)"
  fi
  rm -f .venv/.installed-*
  touch "$stamp_file"
fi

# ---- Kafka broker jars ---------------------------------------------------------------------------
POM="scripts/kafka/pom.xml"
KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM")"
[[ -n $KAFKA_VERSION ]] || die "$POM does not pin kafka.version"
LIBS="${KAFKA_LIBS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/realtimeorder/kafka/$KAFKA_VERSION/libs}"
pom_stamp="$(sha256sum "$POM" | cut -c1-16)"
if [[ ! -e "$LIBS/.resolved-$pom_stamp" ]]; then
  log "resolving Apache Kafka $KAFKA_VERSION from Maven Central into $LIBS"
  staging="$(mktemp -d "$(dirname "$LIBS")/libs.XXXXXX" 2>/dev/null \
    || { mkdir -p "$(dirname "$LIBS")" && mktemp -d "$(dirname "$LIBS")/libs.XXXXXX"; })"
  mvn -B -q -Dstyle.color=never -f "$POM" dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$staging" </dev/null
  ls "$staging"/kafka_2.13-"$KAFKA_VERSION".jar >/dev/null || die "Maven did not resolve kafka_2.13"
  touch "$staging/.resolved-$pom_stamp"
  rm -rf "$LIBS"
  mv "$staging" "$LIBS"
fi

log "ready (venv: .venv, Kafka $KAFKA_VERSION: $LIBS)"
