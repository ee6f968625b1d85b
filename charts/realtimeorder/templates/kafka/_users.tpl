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

{{/* The operator's own KafkaUser, on the release's Strimzi Kafka when the operator runs. Its
ACLs are what kafka_admin.py does in the operator's Kafka mode:
- always, for kafkaLag WorkerAutoscalers: the topic's metadata and end offsets and the group's
  committed offsets (Describe on topic and group; it never joins the group nor commits). An
  autoscaler may name any topic and group, so these are Describe on every one, which reads no
  message;
- in admin mode only (EventTopics through the Admin API, not KafkaTopics): create topics, add
  partitions (Alter), read and change their config (DescribeConfigs, AlterConfigs), delete them.
No super user: every Admin API call it makes is covered by a topic or group ACL. */}}
{{- define "realtimeorder.kafka.operatorUser" -}}
{{- if and .Values.kafka.enabled .Values.operator.enabled -}}true{{- end -}}
{{- end -}}

{{- define "realtimeorder.kafka.operatorTopicOperations" -}}
{{- if eq (include "realtimeorder.operator.kafkaMode" .) "admin" -}}
[Describe, Create, Alter, DescribeConfigs, AlterConfigs, Delete]
{{- else -}}
[Describe]
{{- end -}}
{{- end -}}

{{/* KAFKA_BROKER and the SASL variables of the KafkaUser `name` ("root": the chart). */}}
{{- define "realtimeorder.kafka.scramEnv" -}}
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
{{- end -}}

{{/* The same for a component's KafkaUser, as an env list (maybe empty). Takes the component
entry with "root". */}}
{{- define "realtimeorder.kafka.userEnv" -}}
{{- $users := include "realtimeorder.kafka.users" .root | fromJsonArray -}}
{{- if has .name $users }}
{{ include "realtimeorder.kafka.scramEnv" (dict "root" .root "name" .name) }}
{{- else -}}
[]
{{- end -}}
{{- end -}}
