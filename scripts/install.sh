#!/usr/bin/env bash
# Install whatever the local stack and the tests need, and nothing that is already there:
#   - Debian packages: PostgreSQL, Redis, RabbitMQ, Prometheus, Java 17, Maven, Chromium (for
#     the browser tests), buildah with debootstrap (images without Docker) and containerd, runc,
#     the CNI plugins, socat and nftables (the one-node cluster); apt-get runs only when one is
#     missing; no system service is started;
#   - the virtualenv .venv: every package at the version and hash requirements-dev.lock pins (so
#     an upstream release changes nothing until `make lock` takes it), then the project itself
#     with `pip install --no-deps -e .` (again whenever pyproject.toml, the lock or the set of
#     top-level packages changes);
#   - the Apache Kafka broker's jars, resolved from Maven Central with scripts/kafka/pom.xml into
#     ${XDG_CACHE_HOME:-$HOME/.cache}/realtimeorder/kafka/<version>/libs (KAFKA_LIBS_DIR overrides);
#   - Mailpit (the local SMTP server and mail viewer), built from its Go module at the version
#     devstack/servers.py pins, into ${XDG_CACHE_HOME:-$HOME/.cache}/realtimeorder/mailpit/<version>
#     (MAILPIT_BIN overrides); needs Go, and Node.js with npm for its web UI;
#   - Jaeger (the local trace store), built from its Go module at the version devstack/servers.py
#     pins, into ${XDG_CACHE_HOME:-$HOME/.cache}/realtimeorder/jaeger/<version> (JAEGER_BIN
#     overrides); needs Go. Optional: when its build fails, install warns and `make up` runs
#     without tracing.
#   - the web apps' npm packages: `npm ci` in frontend/ (from the lockfile, npm's cache first) when
#     frontend/node_modules is missing or older than the lockfile; needs Node.js >= 20.19.
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
  python3 python3-venv iproute2 ca-certificates wrk linux-perf
  chromium
  # images without Docker (make images), and the one-node cluster (make cluster-up, test-cluster)
  buildah debootstrap runc containerd containernetworking-plugins socat nftables openssl
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
# shellcheck source=scripts/venv-python.sh
source scripts/venv-python.sh
PYTHON="$(venv_python)"
is_python311 "$PYTHON" || die "$PYTHON is missing or older than 3.11 (set PYTHON=/path/to/python3.11+)"

# A virtualenv made from another interpreter (or one whose python no longer runs) is made again.
if [[ -x .venv/bin/python ]]; then
  made_from="$(base_interpreter .venv/bin/python 2>/dev/null || true)"
  if [[ $made_from != "$(base_interpreter "$PYTHON")" ]]; then
    log "making .venv again from $PYTHON (it was made from ${made_from:-an interpreter that no longer runs})"
    rm -rf .venv
  fi
fi

# The editable install maps the top-level packages it saw, so a new one needs a reinstall too.
stamp_input() {
  cat pyproject.toml requirements-dev.lock
  for init in */__init__.py; do [[ -e $init ]] && echo "$init"; done
}
stamp="$(stamp_input | sha256sum | cut -c1-16)"
stamp_file=".venv/.installed-$stamp"
if [[ ! -x .venv/bin/python ]]; then
  log "creating .venv from $PYTHON"
  "$PYTHON" -m venv .venv
fi
if [[ ! -e $stamp_file ]]; then
  log "pip install -r requirements-dev.lock, then -e . (output in .venv/pip-install.log)"
  if ! {
    .venv/bin/python -m pip install --disable-pip-version-check --require-hashes \
      -r requirements-dev.lock \
      && .venv/bin/python -m pip install --disable-pip-version-check --no-deps -e .
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

# ---- Jaeger ----------------------------------------------------------------------------------------
# The trace store `make up` runs (devstack/servers.py). No release download: cmd/jaeger (Jaeger v2)
# is built from the Go module proxy, pure Go, so CGO is off. The module does not hold the web UI's
# built bundle, so its UI is a placeholder page; the query API (/api/traces) works. A build takes
# about 3 minutes, then never again for a version. Tracing is optional: a failed build is a
# warning, and `make up` starts everything else untraced and says so.
JAEGER_VERSION="$(sed -n 's/^JAEGER_VERSION = "\(v[^"]*\)"$/\1/p' devstack/servers.py)"
[[ -n $JAEGER_VERSION ]] || die "devstack/servers.py does not pin JAEGER_VERSION"
JAEGER_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/realtimeorder/jaeger/$JAEGER_VERSION"

build_jaeger() {  # staging-dir log: the binary into <staging-dir>/jaeger
  local staging="$1" logfile="$2" module_dir
  export GOTOOLCHAIN=local GOFLAGS= GOWORK=off CGO_ENABLED=0
  module_dir="$(go mod download -json "github.com/jaegertracing/jaeger@$JAEGER_VERSION" 2>>"$logfile" \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p' || true)"
  [[ -d $module_dir ]] || return 1
  # In the module's own folder, so its go.sum and replace directives hold (`go install
  # module@version` refuses a module with replace directives); the read-only cache stays so.
  (cd "$module_dir" && go build -mod=readonly -trimpath -ldflags "-s -w" -o "$staging/jaeger" ./cmd/jaeger) \
    </dev/null >>"$logfile" 2>&1
}

if [[ -n ${JAEGER_BIN:-} ]]; then
  [[ -x $JAEGER_BIN ]] || die "JAEGER_BIN=$JAEGER_BIN is not an executable"
elif [[ ! -x $JAEGER_DIR/jaeger ]]; then
  if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then
    PATH="/usr/local/go/bin:$PATH"
  fi
  mkdir -p "$(dirname "$JAEGER_DIR")"
  jaeger_log="$JAEGER_DIR.build.log"
  if ! command -v go >/dev/null 2>&1; then
    log "WARNING: building Jaeger needs Go (https://go.dev/dl/) on PATH; make up runs without tracing"
  else
    exec 8>"$JAEGER_DIR.lock"
    flock 8  # one build at a time; a second install waits, then finds the binary
    if [[ ! -x $JAEGER_DIR/jaeger ]]; then
      rm -rf "$JAEGER_DIR".??????  # staging folders of an interrupted build
      : >"$jaeger_log"
      log "building Jaeger $JAEGER_VERSION from its Go module (about 3 minutes; log: $jaeger_log)"
      staging="$(mktemp -d "$JAEGER_DIR.XXXXXX")"
      chmod 755 "$staging"
      if build_jaeger "$staging" "$jaeger_log"; then
        rm -rf "$JAEGER_DIR"
        mv "$staging" "$JAEGER_DIR"
        log "built Jaeger $JAEGER_VERSION into $JAEGER_DIR"
      else
        tail -n 20 "$jaeger_log" >&2
        rm -rf "$staging"
        log "WARNING: building Jaeger failed (full log: $jaeger_log); make up runs without tracing"
      fi
    fi
    exec 8>&-
  fi
fi

# ---- Mailpit ---------------------------------------------------------------------------------------
# No release download: the binary is built from the Go module proxy. It is pure Go (SQLite through
# modernc.org), so CGO is off. The module holds the web UI's sources but not its built bundle, so
# when Node.js and npm are here the bundle is built first (without the API docs page, whose
# package the npm registry may not serve); without them Mailpit still takes mail and answers its
# API, and its web UI is blank. A build takes about 2 minutes, then never again for a version.
MAILPIT_VERSION="$(sed -n 's/^MAILPIT_VERSION = "\(v[^"]*\)"$/\1/p' devstack/servers.py)"
[[ -n $MAILPIT_VERSION ]] || die "devstack/servers.py does not pin MAILPIT_VERSION"
MAILPIT_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/realtimeorder/mailpit/$MAILPIT_VERSION"

build_mailpit_ui() {  # source-dir log: the UI bundle into <source-dir>/server/ui/dist
  local src="$1" logfile="$2"
  command -v npm >/dev/null 2>&1 && command -v node >/dev/null 2>&1 || return 1
  node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 18 ? 0 : 1)' || return 1
  (
    cd "$src" &&
      node -e '
        const fs = require("fs");
        const pkg = JSON.parse(fs.readFileSync("package.json"));
        delete pkg.dependencies.rapidoc;  // only the API docs page uses it
        pkg.devDependencies = Object.fromEntries(Object.entries(pkg.devDependencies)
          .filter(([name]) => /^(esbuild|esbuild-plugin-vue-next|esbuild-sass-plugin|@vue\/compiler-sfc)$/.test(name)));
        fs.writeFileSync("package.json", JSON.stringify(pkg, null, 2));
        const config = fs.readFileSync("esbuild.config.mjs", "utf8");
        const only = config.replace(/entryPoints: \[[^\]]*\]/, "entryPoints: [\"server/ui-src/app.js\"]");
        if (only === config) throw new Error("esbuild.config.mjs has no entryPoints to narrow");
        fs.writeFileSync("esbuild.config.mjs", only);' &&
      rm -f package-lock.json &&
      npm install --omit=peer --no-audit --no-fund --loglevel=error &&
      MINIFY=true node esbuild.config.mjs &&
      [[ -s server/ui/dist/app.js ]]
  ) </dev/null >>"$logfile" 2>&1
}

if [[ -n ${MAILPIT_BIN:-} ]]; then
  [[ -x $MAILPIT_BIN ]] || die "MAILPIT_BIN=$MAILPIT_BIN is not an executable"
elif [[ ! -x $MAILPIT_DIR/mailpit ]]; then
  if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then
    PATH="/usr/local/go/bin:$PATH"  # the Go toolchain's usual home
  fi
  command -v go >/dev/null 2>&1 || die "building Mailpit needs Go (https://go.dev/dl/) on PATH"
  mkdir -p "$(dirname "$MAILPIT_DIR")"
  exec 8>"$MAILPIT_DIR.lock"
  flock 8  # one build at a time; a second install waits, then finds the binary
  if [[ ! -x $MAILPIT_DIR/mailpit ]]; then
    rm -rf "$MAILPIT_DIR".??????  # staging folders of an interrupted build
    mailpit_log="$MAILPIT_DIR.build.log"
    : >"$mailpit_log"
    log "building Mailpit $MAILPIT_VERSION from its Go module (about 2 minutes; log: $mailpit_log)"
    staging="$(mktemp -d "$MAILPIT_DIR.XXXXXX")"
    chmod 755 "$staging"
    export GOTOOLCHAIN=local GOFLAGS= GOWORK=off CGO_ENABLED=0
    module_dir="$(go mod download -json "github.com/axllent/mailpit@$MAILPIT_VERSION" 2>>"$mailpit_log" \
      | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p' || true)"
    [[ -d $module_dir ]] || { tail -n 20 "$mailpit_log" >&2; die "go could not download Mailpit $MAILPIT_VERSION"; }
    cp -R "$module_dir" "$staging/src"
    chmod -R u+w "$staging/src"
    if build_mailpit_ui "$staging/src" "$mailpit_log"; then
      touch "$staging/.with-web-ui"
    else
      log "WARNING: Mailpit's web UI was not built (needs Node.js >= 18 and npm; see $mailpit_log);"
      log "         mail is still received and listed by its API. Delete $MAILPIT_DIR to try again."
    fi
    if ! (cd "$staging/src" && go build -trimpath \
        -ldflags "-s -w -X github.com/axllent/mailpit/config.Version=$MAILPIT_VERSION" \
        -o "$staging/mailpit" .) </dev/null >>"$mailpit_log" 2>&1; then
      tail -n 40 "$mailpit_log" >&2
      rm -rf "$staging"
      die "building Mailpit failed (full log: $mailpit_log)"
    fi
    rm -rf "$staging/src"
    rm -rf "$MAILPIT_DIR"
    mv "$staging" "$MAILPIT_DIR"
    log "built Mailpit $MAILPIT_VERSION into $MAILPIT_DIR"
  fi
  exec 8>&-
fi

# ---- the web apps' packages (frontend/, npm workspaces) ---------------------------------------------
# From the lockfile only; npm's cache serves every package it has seen, so a second clean clone
# installs without the network. The browser tests drive Debian's chromium (above): no download.
if [[ ! -d frontend/node_modules || frontend/package-lock.json -nt frontend/node_modules/.package-lock.json ]]; then
  command -v npm >/dev/null 2>&1 || die "the web apps need Node.js >= 20.19 with npm (https://nodejs.org/)"
  node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)' \
    || die "the web apps need Node.js >= 20.19, found $(node --version)"
  log "npm ci in frontend/ (output in frontend/npm-ci.log)"
  if ! (cd frontend && npm ci --prefer-offline --no-audit --no-fund) </dev/null >frontend/npm-ci.log 2>&1; then
    tail -n 40 frontend/npm-ci.log >&2
    die "npm ci failed (full output in frontend/npm-ci.log)"
  fi
fi

log "ready (venv: .venv, Kafka $KAFKA_VERSION: $LIBS, Mailpit $MAILPIT_VERSION)"
