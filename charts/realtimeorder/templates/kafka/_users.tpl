{{/* Kafka users of the release's Strimzi cluster (SECURITY.md, "Broker users"): one KafkaUser
per service that uses Kafka, SCRAM-SHA-512 on the listener `scram`, with ACLs for exactly the
topics it produces and consumes (and their dead-letter topics) and its consumer group. The
table follows the code: what each service's outbox emits and its EVENT_HANDLERS consume
(tests/k8s/test_chart.py compares them). */}}
{{- define "realtimeorder.kafka.userTopics" -}}
orders:
  produces: [order.created, order.shipped, order.delivered, order.cancelled]
  consumes: [inventory.reservation-expired, order.confirmed, order.failed]
inventory:
  produces: [order.confirmed, order.failed, inventory.reservation-expired]
  consumes: [order.created, order.cancelled, order.shipped]
notifications:
  produces: []
  consumes: [order.created, order.confirmed, order.failed, order.shipped, order.delivered, order.cancelled]
analytics:
  produces: []
  consumes: [order.created, order.confirmed, order.failed, order.shipped, order.delivered, order.cancelled, inventory.reservation-expired]
  # Its Kafka overview lists every topic's offsets and every consumer group's lag.
  monitors: true
{{- end -}}

{{/* The services that get a KafkaUser: those of the table that are enabled and use Kafka. */}}
{{- define "realtimeorder.kafka.users" -}}
{{- $users := list -}}
{{- if .Values.kafka.enabled -}}
{{- range $name, $_ := include "realtimeorder.kafka.userTopics" . | fromYaml -}}
{{- $values := index $.Values $name -}}
{{- if and $values.enabled (has "kafka" ($values.uses | default list)) -}}
{{- $users = append $users $name -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toJson $users -}}
{{- end -}}

{{/* The KafkaUser (and so the Secret Strimzi writes its password to) of a service. */}}
{{- define "realtimeorder.kafka.userName" -}}
{{- printf "%s-kafka-%s" (include "realtimeorder.fullname" .root) .name -}}
{{- end -}}

{{- define "realtimeorder.kafka.scramBootstrap" -}}
{{- printf "%s-kafka-bootstrap.%s.svc:9094" (include "realtimeorder.kafka.fullname" .) .Release.Namespace -}}
{{- end -}}

{{/* KAFKA_BROKER and the SASL variables of a component's KafkaUser, as an env list (maybe
empty). Takes the component entry with "root". */}}
{{- define "realtimeorder.kafka.userEnv" -}}
{{- $users := include "realtimeorder.kafka.users" .root | fromJsonArray -}}
{{- if has .name $users }}
- name: KAFKA_BROKER
  value: {{ include "realtimeorder.kafka.scramBootstrap" .root | quote }}
- name: KAFKA_SECURITY_PROTOCOL
  value: SASL_PLAINTEXT
- name: KAFKA_SASL_MECHANISM
  value: SCRAM-SHA-512
- name: KAFKA_SASL_USERNAME
  value: {{ include "realtimeorder.kafka.userName" . | quote }}
- name: KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "realtimeorder.kafka.userName" . }}
      key: password
{{- else -}}
[]
{{- end -}}
{{- end -}}
