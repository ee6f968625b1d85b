#!/bin/sh
# Apache Kafka in KRaft mode, configured as the apache/kafka image is: every KAFKA_* variable
# becomes a server property (KAFKA_NODE_ID -> node.id; "__" stands for "_" and "___" for "-"),
# except the JVM's own (KAFKA_HEAP_OPTS, KAFKA_OPTS, ...). CLUSTER_ID formats an empty log
# directory on first start. The generated files go to KAFKA_CONFIG_DIR (default /tmp/kafka).
set -eu
config="${KAFKA_CONFIG_DIR:-/tmp/kafka}"
mkdir -p "$config"
env | grep '^KAFKA_' | while IFS='=' read -r name value; do
  case "$name" in
    KAFKA_HEAP_OPTS | KAFKA_JVM_PERFORMANCE_OPTS | KAFKA_OPTS | KAFKA_LOG4J_OPTS | \
      KAFKA_JMX_OPTS | KAFKA_GC_LOG_OPTS | KAFKA_CONFIG_DIR) continue ;;
  esac
  key="$(printf '%s' "${name#KAFKA_}" | sed -e 's/___/-/g' -e 's/__/@/g' -e 's/_/./g' -e 's/@/_/g' \
    | tr 'A-Z' 'a-z')"
  printf '%s=%s\n' "$key" "$value"
done > "$config/server.properties"

classpath="/opt/kafka/libs/*"
# shellcheck disable=SC2086  # the *_OPTS variables are lists of options
set -- ${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m} ${KAFKA_JVM_PERFORMANCE_OPTS:--XX:+UseG1GC \
  -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError} -XX:-UsePerfData \
  -Djava.awt.headless=true -Dlog4j2.configurationFile=/opt/kafka/config/log4j2.properties \
  ${KAFKA_OPTS:-} -cp "$classpath"

log_dirs="$(sed -n 's/^log\.dirs=//p' "$config/server.properties")"
if [ -n "$log_dirs" ] && [ ! -f "${log_dirs%%,*}/meta.properties" ]; then
  java "$@" kafka.tools.StorageTool format --ignore-formatted \
    --cluster-id "${CLUSTER_ID:?CLUSTER_ID is required to format an empty log directory}" \
    --config "$config/server.properties"
fi
exec java "$@" kafka.Kafka "$config/server.properties"
