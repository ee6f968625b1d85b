#!/usr/bin/env bash
# Print a folder holding the third-party CRDs the chart renders objects for (Strimzi, RabbitMQ
# cluster and messaging topology operators, Gateway API, Prometheus Operator, CloudNativePG), so tests can
# install them into their API server.
#
#   scripts/third-party-crds.sh            print the folder, fetching the pinned files if needed
#   scripts/third-party-crds.sh --fetch    fetch again even when the cache is complete
#
# RTO_THIRD_PARTY_CRDS names a folder that already holds them (same layout: one subfolder per
# project, the upstream file names); it is printed as it is and nothing is fetched. Otherwise the
# files of the releases pinned below are downloaded once into
# ${RTO_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/realtimeorder}/third-party-crds/<versions>/,
# outside the repository: these files are never committed.
set -euo pipefail

# ---- Pinned upstream releases: the one place to change them ---------------------------------
STRIMZI_VERSION="1.2.0"
RABBITMQ_CLUSTER_OPERATOR_VERSION="v2.22.3"
RABBITMQ_TOPOLOGY_OPERATOR_VERSION="v1.20.1"
GATEWAY_API_VERSION="v1.6.1"
PROMETHEUS_OPERATOR_VERSION="v0.93.0"
CLOUDNATIVE_PG_VERSION="v1.30.0"
# -----------------------------------------------------------------------------------------------

log() { printf '[third-party-crds] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

if [[ -n "${RTO_THIRD_PARTY_CRDS:-}" ]]; then
  [[ -d "$RTO_THIRD_PARTY_CRDS" ]] || die "RTO_THIRD_PARTY_CRDS=$RTO_THIRD_PARTY_CRDS is not a folder"
  cd "$RTO_THIRD_PARTY_CRDS" && pwd
  exit 0
fi

GITHUB="https://raw.githubusercontent.com"
STRIMZI="$GITHUB/strimzi/strimzi-kafka-operator/$STRIMZI_VERSION/packaging/install/cluster-operator"
RMQ_CLUSTER="$GITHUB/rabbitmq/cluster-operator/$RABBITMQ_CLUSTER_OPERATOR_VERSION/config/crd/bases"
RMQ_TOPOLOGY="$GITHUB/rabbitmq/messaging-topology-operator/$RABBITMQ_TOPOLOGY_OPERATOR_VERSION/config/crd/bases"
GATEWAY_API="$GITHUB/kubernetes-sigs/gateway-api/$GATEWAY_API_VERSION/config/crd/standard"
PROMETHEUS="$GITHUB/prometheus-operator/prometheus-operator/$PROMETHEUS_OPERATOR_VERSION/example/prometheus-operator-crd"
CNPG="$GITHUB/cloudnative-pg/cloudnative-pg/$CLOUDNATIVE_PG_VERSION/config/crd/bases"

# folder/file <- URL
FILES=(
  "strimzi/040-Crd-kafka.yaml $STRIMZI/040-Crd-kafka.yaml"
  "strimzi/043-Crd-kafkatopic.yaml $STRIMZI/043-Crd-kafkatopic.yaml"
  "strimzi/044-Crd-kafkauser.yaml $STRIMZI/044-Crd-kafkauser.yaml"
  "strimzi/045-Crd-kafkanodepool.yaml $STRIMZI/045-Crd-kafkanodepool.yaml"
  "rabbitmq-cluster/rabbitmq.com_rabbitmqclusters.yaml $RMQ_CLUSTER/rabbitmq.com_rabbitmqclusters.yaml"
  "rabbitmq-topology/rabbitmq.com_queues.yaml $RMQ_TOPOLOGY/rabbitmq.com_queues.yaml"
  "rabbitmq-topology/rabbitmq.com_exchanges.yaml $RMQ_TOPOLOGY/rabbitmq.com_exchanges.yaml"
  "rabbitmq-topology/rabbitmq.com_bindings.yaml $RMQ_TOPOLOGY/rabbitmq.com_bindings.yaml"
  "rabbitmq-topology/rabbitmq.com_policies.yaml $RMQ_TOPOLOGY/rabbitmq.com_policies.yaml"
  "gateway-api/gateway.networking.k8s.io_gatewayclasses.yaml $GATEWAY_API/gateway.networking.k8s.io_gatewayclasses.yaml"
  "gateway-api/gateway.networking.k8s.io_gateways.yaml $GATEWAY_API/gateway.networking.k8s.io_gateways.yaml"
  "gateway-api/gateway.networking.k8s.io_httproutes.yaml $GATEWAY_API/gateway.networking.k8s.io_httproutes.yaml"
  "gateway-api/gateway.networking.k8s.io_referencegrants.yaml $GATEWAY_API/gateway.networking.k8s.io_referencegrants.yaml"
  "prometheus-operator/monitoring.coreos.com_servicemonitors.yaml $PROMETHEUS/monitoring.coreos.com_servicemonitors.yaml"
  "prometheus-operator/monitoring.coreos.com_podmonitors.yaml $PROMETHEUS/monitoring.coreos.com_podmonitors.yaml"
  "prometheus-operator/monitoring.coreos.com_prometheusrules.yaml $PROMETHEUS/monitoring.coreos.com_prometheusrules.yaml"
  "cloudnative-pg/postgresql.cnpg.io_clusters.yaml $CNPG/postgresql.cnpg.io_clusters.yaml"
  "cloudnative-pg/postgresql.cnpg.io_poolers.yaml $CNPG/postgresql.cnpg.io_poolers.yaml"
  "cloudnative-pg/postgresql.cnpg.io_databases.yaml $CNPG/postgresql.cnpg.io_databases.yaml"
  "cloudnative-pg/postgresql.cnpg.io_scheduledbackups.yaml $CNPG/postgresql.cnpg.io_scheduledbackups.yaml"
)

VERSIONS="strimzi-${STRIMZI_VERSION}_rmq-${RABBITMQ_CLUSTER_OPERATOR_VERSION}-${RABBITMQ_TOPOLOGY_OPERATOR_VERSION}_gw-${GATEWAY_API_VERSION}_prom-${PROMETHEUS_OPERATOR_VERSION}_cnpg-${CLOUDNATIVE_PG_VERSION}"
CACHE="${RTO_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/realtimeorder}/third-party-crds/$VERSIONS"

complete() {
  local entry
  for entry in "${FILES[@]}"; do [[ -s "$CACHE/${entry%% *}" ]] || return 1; done
}

if [[ "${1:-}" != "--fetch" ]] && complete; then
  echo "$CACHE"
  exit 0
fi
[[ -z "${1:-}" || "$1" == "--fetch" ]] || die "unknown argument: $1"

command -v curl >/dev/null 2>&1 || die "curl is needed to fetch the CRDs (or set RTO_THIRD_PARTY_CRDS)"
# Download into a temporary folder and move it into place whole, so an interrupted fetch never
# leaves a half-filled cache that looks complete.
mkdir -p "$(dirname "$CACHE")"
tmp="$(mktemp -d "$CACHE.tmp.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
for entry in "${FILES[@]}"; do
  file="${entry%% *}" url="${entry#* }"
  mkdir -p "$tmp/$(dirname "$file")"
  log "fetching $url"
  curl --fail --silent --show-error --location --retry 3 --connect-timeout 15 \
    --output "$tmp/$file" "$url" ||
    die "could not fetch $url (offline? set RTO_THIRD_PARTY_CRDS to a folder holding these files)"
  grep -q '^kind: CustomResourceDefinition' "$tmp/$file" || die "$url is not a CustomResourceDefinition"
done
rm -rf "$CACHE"
mv "$tmp" "$CACHE"
trap - EXIT
log "cached in $CACHE"
echo "$CACHE"
