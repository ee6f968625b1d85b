{{/* The operator's modes after resolving "auto", and the namespaces it reconciles. */}}
{{- define "realtimeorder.operator.kafkaMode" -}}
{{- if eq .Values.operator.kafkaMode "auto" -}}
{{- /* Strimzi only where its topic operator reconciles: the Kafka's (the release's) namespace. */}}
{{- $onlyHere := and (not .Values.operator.watchAllNamespaces) (eq (include "realtimeorder.operator.watchNamespaces" .) .Release.Namespace) -}}
{{- ternary "strimzi" "admin" (and .Values.kafka.enabled $onlyHere) -}}
{{- else -}}
{{- .Values.operator.kafkaMode -}}
{{- end -}}
{{- end -}}

{{- define "realtimeorder.operator.watchNamespaces" -}}
{{- .Values.operator.watchNamespaces | default (list .Release.Namespace) | uniq | join "," -}}
{{- end -}}

{{- define "realtimeorder.operator.serviceAccountName" -}}
{{- include "realtimeorder.serviceAccountName" (dict "root" . "key" "operator" "name" "operator") -}}
{{- end -}}

{{/* What the operator may do, in every namespace it reconciles. */}}
{{- define "realtimeorder.operator.rules" -}}
# Its own resources: Kopf watches them and patches finalizers, annotations and status.
- apiGroups: ["realtimeorder.io"]
  resources: ["eventtopics", "notificationqueues", "workerautoscalers"]
  verbs: ["get", "list", "watch", "patch", "update"]
- apiGroups: ["realtimeorder.io"]
  resources: ["eventtopics/status", "notificationqueues/status", "workerautoscalers/status"]
  verbs: ["get", "patch", "update"]
# Children carry owner references with blockOwnerDeletion, which admission checks against this.
- apiGroups: ["realtimeorder.io"]
  resources: ["eventtopics/finalizers", "notificationqueues/finalizers", "workerautoscalers/finalizers"]
  verbs: ["update"]
# Kubernetes Events for each reconciliation and scale.
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create"]
# WorkerAutoscaler: only the scale subresource of its target, never the Deployment itself.
- apiGroups: ["apps"]
  resources: ["deployments/scale"]
  verbs: ["get", "patch"]
{{- if eq (include "realtimeorder.operator.kafkaMode" .) "strimzi" }}
# Strimzi mode: one KafkaTopic per EventTopic.
- apiGroups: ["kafka.strimzi.io"]
  resources: ["kafkatopics"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
{{- end }}
{{- if eq .Values.operator.rabbitmqMode "topology" }}
# Topology mode: Queue and Policy objects of the RabbitMQ messaging topology operator.
- apiGroups: ["rabbitmq.com"]
  resources: ["queues", "policies"]
  verbs: ["get", "list", "create", "patch", "delete"]
{{- end }}
{{- end -}}

{{/* The variables the chart sets on the operator (operator.extraEnv is laid over them). */}}
{{- define "realtimeorder.operator.env" -}}
{{- $values := .Values.operator }}
- name: WATCH_NAMESPACE
  value: {{ ternary "" (include "realtimeorder.operator.watchNamespaces" .) $values.watchAllNamespaces | quote }}
- name: HEALTH_PORT
  value: {{ $values.healthPort | quote }}
- name: METRICS_PORT
  value: {{ $values.metricsPort | quote }}
- name: RECONCILE_INTERVAL_SECONDS
  value: {{ $values.reconcileIntervalSeconds | quote }}
- name: AUTOSCALER_INTERVAL_SECONDS
  value: {{ $values.autoscalerIntervalSeconds | quote }}
{{- include "realtimeorder.kafka.securityEnv" . }}
{{- if include "realtimeorder.kafka.operatorUser" . }}
{{ include "realtimeorder.kafka.scramEnv" (dict "root" . "name" "operator") }}
{{- end }}
{{- if eq (include "realtimeorder.operator.kafkaMode" .) "strimzi" }}
- name: STRIMZI_KAFKA_CLUSTER
  value: {{ include "realtimeorder.kafka.fullname" . | quote }}
{{- end }}
- name: RABBITMQ_MANAGEMENT_URL
  value: {{ include "realtimeorder.rabbitmq.managementUrl" . | quote }}
{{- if .Values.rabbitmq.enabled }}
{{- /* Topology mode: its own monitoring user (rabbitmq/_users.tpl); management mode declares
and deletes queues, which takes the cluster's administrator. */}}
{{- $secret := include "realtimeorder.rabbitmq.secretName" . }}
{{- if eq $values.rabbitmqMode "topology" }}
{{- $secret = include "realtimeorder.rabbitmq.userName" (dict "root" . "name" "operator") }}
{{- end }}
- name: RABBITMQ_USER
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: username
- name: RABBITMQ_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: password
{{- else }}
- name: RABBITMQ_USER
  value: {{ .Values.externalRabbitmq.username | quote }}
- name: RABBITMQ_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "realtimeorder.rabbitmq.secretName" . }}
      key: {{ .Values.externalRabbitmq.existingSecretPasswordKey }}
{{- end }}
{{- if eq $values.rabbitmqMode "topology" }}
- name: RABBITMQ_TOPOLOGY_CLUSTER
  value: {{ include "realtimeorder.rabbitmq.fullname" . | quote }}
{{- end }}
{{- end -}}
