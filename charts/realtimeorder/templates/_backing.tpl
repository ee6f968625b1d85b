{{/*
Where the backing services are and how a component authenticates to them, whichever mode each
runs in: bundled (postgresql, redis), operator-managed (Strimzi kafka, RabbitmqCluster) or
external. Components list what they connect to in `<component>.uses`; that list decides their
connection variables and the `realtimeorder.io/uses-<service>` pod labels the NetworkPolicies
select on.
*/}}

{{/* ---- PostgreSQL ----------------------------------------------------------------------------
Three modes: the bundled StatefulSet (postgresql.enabled, mode statefulset), a CloudNativePG
Cluster behind its PgBouncer Pooler (postgresql.enabled, mode cloudnativepg), or an external
server (externalDatabase). */}}
{{- define "realtimeorder.postgresql.cnpg" -}}
{{- if and .Values.postgresql.enabled (eq .Values.postgresql.mode "cloudnativepg") -}}true{{- end -}}
{{- end -}}

{{- define "realtimeorder.postgresql.statefulset" -}}
{{- if and .Values.postgresql.enabled (eq .Values.postgresql.mode "statefulset") -}}true{{- end -}}
{{- end -}}

{{/* The CloudNativePG Pooler in front of the Cluster (named "<fullname>-postgresql"); the
Pooler's Service has its name. */}}
{{- define "realtimeorder.postgresql.poolerName" -}}
{{- printf "%s-pooler" (include "realtimeorder.postgresql.fullname" .) -}}
{{- end -}}

{{- define "realtimeorder.database.host" -}}
{{- if include "realtimeorder.postgresql.cnpg" . -}}
{{- include "realtimeorder.postgresql.poolerName" . -}}
{{- else if .Values.postgresql.enabled -}}
{{- include "realtimeorder.postgresql.fullname" . -}}
{{- else -}}
{{- .Values.externalDatabase.host -}}
{{- end -}}
{{- end -}}

{{- define "realtimeorder.database.port" -}}
{{- if .Values.postgresql.enabled -}}5432{{- else -}}{{ .Values.externalDatabase.port }}{{- end -}}
{{- end -}}

{{- define "realtimeorder.database.name" -}}
{{- if .Values.postgresql.enabled -}}{{ .Values.postgresql.auth.database }}{{- else -}}{{ .Values.externalDatabase.database }}{{- end -}}
{{- end -}}

{{- define "realtimeorder.database.user" -}}
{{- if .Values.postgresql.enabled -}}{{ .Values.postgresql.auth.username }}{{- else -}}{{ .Values.externalDatabase.user }}{{- end -}}
{{- end -}}

{{/* CloudNativePG writes the application user's generated credentials to "<cluster>-app"
(kubernetes.io/basic-auth: username, password), or takes an existing Secret of that type. */}}
{{- define "realtimeorder.database.secretName" -}}
{{- if include "realtimeorder.postgresql.cnpg" . -}}
{{- .Values.postgresql.auth.existingSecret | default (printf "%s-app" (include "realtimeorder.postgresql.fullname" .)) -}}
{{- else if .Values.postgresql.enabled -}}
{{- .Values.postgresql.auth.existingSecret | default (include "realtimeorder.postgresql.fullname" .) -}}
{{- else -}}
{{- .Values.externalDatabase.existingSecret | default (printf "%s-external-database" (include "realtimeorder.fullname" .)) -}}
{{- end -}}
{{- end -}}

{{- define "realtimeorder.database.secretKey" -}}
{{- if .Values.postgresql.enabled -}}{{ .Values.postgresql.auth.existingSecretPasswordKey }}{{- else -}}{{ .Values.externalDatabase.existingSecretPasswordKey }}{{- end -}}
{{- end -}}

{{/* ---- Redis --------------------------------------------------------------------------------- */}}
{{- define "realtimeorder.redis.secretName" -}}
{{- if .Values.redis.enabled -}}
{{- .Values.redis.auth.existingSecret | default (include "realtimeorder.redis.fullname" .) -}}
{{- else -}}
{{- .Values.externalRedis.existingSecret | default (printf "%s-external-redis" (include "realtimeorder.fullname" .)) -}}
{{- end -}}
{{- end -}}

{{/* ---- Kafka --------------------------------------------------------------------------------- */}}
{{- define "realtimeorder.kafka.bootstrap" -}}
{{- if .Values.kafka.enabled -}}
{{- include "realtimeorder.kafka.scramBootstrap" . -}}
{{- else -}}
{{- .Values.externalKafka.brokers -}}
{{- end -}}
{{- end -}}

{{/* An external Kafka's TLS and SASL settings, as the librdkafka properties they name
(security.protocol, sasl.*, ssl.ca.location) with a KAFKA_ prefix; nothing for a plaintext
cluster or the release's Strimzi cluster (its `scram` listener, where each client connects as its
own KafkaUser: templates/kafka/_users.tpl). */}}
{{- define "realtimeorder.kafka.securityEnv" -}}
{{- $kafka := .Values.externalKafka -}}
{{- if not .Values.kafka.enabled -}}
{{- $protocol := printf "%s%s" (ternary "SASL_" "" (not (empty $kafka.sasl.mechanism))) (ternary "SSL" "PLAINTEXT" $kafka.tls.enabled) -}}
{{- if ne $protocol "PLAINTEXT" }}
- name: KAFKA_SECURITY_PROTOCOL
  value: {{ $protocol | quote }}
{{- end }}
{{- if and $kafka.tls.enabled $kafka.tls.caSecret }}
- name: KAFKA_SSL_CA_LOCATION
  value: {{ printf "/etc/realtimeorder/kafka-ca/%s" $kafka.tls.caKey | quote }}
{{- end }}
{{- with $kafka.sasl.mechanism }}
- name: KAFKA_SASL_MECHANISM
  value: {{ . | quote }}
- name: KAFKA_SASL_USERNAME
  value: {{ $kafka.sasl.username | quote }}
- name: KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $kafka.sasl.existingSecret }}
      key: {{ $kafka.sasl.existingSecretPasswordKey }}
{{- end }}
{{- end -}}
{{- end -}}

{{/* The volume and mount of an external Kafka's CA certificate, for a pod that uses Kafka:
"volumes" or "mounts". */}}
{{- define "realtimeorder.kafka.caVolume" -}}
{{- $kafka := .root.Values.externalKafka -}}
{{- if and (not .root.Values.kafka.enabled) $kafka.tls.enabled $kafka.tls.caSecret -}}
{{- if eq .part "volumes" }}
- name: kafka-ca
  secret:
    secretName: {{ $kafka.tls.caSecret }}
    items:
      - key: {{ $kafka.tls.caKey }}
        path: {{ $kafka.tls.caKey }}
{{- else }}
- name: kafka-ca
  mountPath: /etc/realtimeorder/kafka-ca
  readOnly: true
{{- end }}
{{- end -}}
{{- end -}}

{{/* ---- RabbitMQ ------------------------------------------------------------------------------ */}}
{{/* The cluster operator writes the generated credentials to "<cluster>-default-user". */}}
{{- define "realtimeorder.rabbitmq.secretName" -}}
{{- if .Values.rabbitmq.enabled -}}
{{- printf "%s-default-user" (include "realtimeorder.rabbitmq.fullname" .) -}}
{{- else -}}
{{- .Values.externalRabbitmq.existingSecret | default (printf "%s-external-rabbitmq" (include "realtimeorder.fullname" .)) -}}
{{- end -}}
{{- end -}}

{{- define "realtimeorder.rabbitmq.host" -}}
{{- printf "%s.%s.svc" (include "realtimeorder.rabbitmq.fullname" .) .Release.Namespace -}}
{{- end -}}

{{- define "realtimeorder.rabbitmq.managementUrl" -}}
{{- if .Values.rabbitmq.enabled -}}
{{- printf "http://%s:15672" (include "realtimeorder.rabbitmq.host" .) -}}
{{- else -}}
{{- .Values.externalRabbitmq.managementUrl -}}
{{- end -}}
{{- end -}}

{{/* ---- Connection variables of a component ---------------------------------------------------
Secrets come through secretKeyRef; a URL that embeds a password is assembled with Kubernetes'
$(VAR) expansion from variables defined just before it.
Usage: include "realtimeorder.backingEnv" (dict "root" $ "uses" .Values.auth.uses) */}}
{{- define "realtimeorder.backingEnv" -}}
{{- $root := .root -}}
{{- $uses := .uses | default list -}}
{{- if has "postgresql" $uses }}
- name: DB_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "realtimeorder.database.secretName" $root }}
      key: {{ include "realtimeorder.database.secretKey" $root }}
{{- end }}
{{- if has "kafka" $uses }}
{{- include "realtimeorder.kafka.securityEnv" $root }}
{{- end }}
{{- if has "redis" $uses }}
{{- if $root.Values.redis.enabled }}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "realtimeorder.redis.secretName" $root }}
      key: {{ $root.Values.redis.auth.existingSecretPasswordKey }}
- name: REDIS_URL
  value: {{ printf "redis://:$(REDIS_PASSWORD)@%s:6379/0" (include "realtimeorder.redis.fullname" $root) | quote }}
{{- else }}
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "realtimeorder.redis.secretName" $root }}
      key: {{ $root.Values.externalRedis.existingSecretUrlKey }}
{{- end }}
{{- end }}
{{- /* rabbitmq-management (the management API only) reads its user and virtual host from
RABBITMQ_URL as well; only `rabbitmq` admits AMQP in the RabbitMQ NetworkPolicy. */}}
{{- if or (has "rabbitmq" $uses) (has "rabbitmq-management" $uses) }}
{{- if $root.Values.rabbitmq.enabled }}
- name: RABBITMQ_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ include "realtimeorder.rabbitmq.secretName" $root }}
      key: username
- name: RABBITMQ_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "realtimeorder.rabbitmq.secretName" $root }}
      key: password
- name: RABBITMQ_URL
  value: {{ printf "amqp://$(RABBITMQ_USERNAME):$(RABBITMQ_PASSWORD)@%s:5672/" (include "realtimeorder.rabbitmq.host" $root) | quote }}
{{- else }}
- name: RABBITMQ_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "realtimeorder.rabbitmq.secretName" $root }}
      key: {{ $root.Values.externalRabbitmq.existingSecretUrlKey }}
{{- end }}
{{- end }}
{{- if has "rabbitmq-management" $uses }}
{{- with include "realtimeorder.rabbitmq.managementUrl" $root }}
- name: RABBITMQ_MANAGEMENT_URL
  value: {{ . | quote }}
{{- end }}
{{- /* An external broker's management user (the operator's) when one is named; otherwise, and
for the RabbitmqCluster's default user, RABBITMQ_URL's user. */}}
{{- if and (not $root.Values.rabbitmq.enabled) $root.Values.externalRabbitmq.username }}
- name: RABBITMQ_MANAGEMENT_USER
  value: {{ $root.Values.externalRabbitmq.username | quote }}
- name: RABBITMQ_MANAGEMENT_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "realtimeorder.rabbitmq.secretName" $root }}
      key: {{ $root.Values.externalRabbitmq.existingSecretPasswordKey }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Pod labels naming the backing services a component connects to. */}}
{{- define "realtimeorder.usesLabels" -}}
{{- range (.uses | default list) }}
realtimeorder.io/uses-{{ . }}: "true"
{{- end }}
{{- end -}}

{{/* ---- Generated secrets ---------------------------------------------------------------------
The value already stored in the named Secret when there is one (so upgrades keep it), otherwise
`length` random alphanumerics; base64-encoded for a Secret's data.
Usage: include "realtimeorder.generatedSecretValue" (dict "root" $ "name" "x" "key" "password" "length" 32) */}}
{{- define "realtimeorder.generatedSecretValue" -}}
{{- $existing := lookup "v1" "Secret" .root.Release.Namespace .name -}}
{{- if and $existing $existing.data (hasKey $existing.data .key) -}}
{{- index $existing.data .key -}}
{{- else -}}
{{- randAlphaNum (int .length) | b64enc -}}
{{- end -}}
{{- end -}}

{{/* ---- Public URLs -------------------------------------------------------------------------- */}}
{{- define "realtimeorder.publicUrl" -}}
{{- printf "%s://%s" .root.Values.hostnames.scheme .host -}}
{{- end -}}

{{- define "realtimeorder.corsOrigins" -}}
{{- if .Values.gateway.corsOrigins -}}
{{- join "," .Values.gateway.corsOrigins -}}
{{- else -}}
{{- $origins := list -}}
{{- if .Values.userApp.enabled -}}
{{- $origins = append $origins (include "realtimeorder.publicUrl" (dict "root" . "host" .Values.hostnames.app)) -}}
{{- end -}}
{{- if .Values.adminDashboard.enabled -}}
{{- $origins = append $origins (include "realtimeorder.publicUrl" (dict "root" . "host" .Values.hostnames.admin)) -}}
{{- end -}}
{{- join "," $origins -}}
{{- end -}}
{{- end -}}

{{/* ---- JWT ----------------------------------------------------------------------------------- */}}
{{- define "realtimeorder.jwt.secretName" -}}
{{- .Values.jwt.existingSecret | default (printf "%s-jwt" (include "realtimeorder.fullname" .)) -}}
{{- end -}}
