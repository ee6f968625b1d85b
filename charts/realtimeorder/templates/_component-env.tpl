{{/*
The components' own environment variables, beside the ones every service gets: each list entry
in _component.tpl may name one of these as its `env`.
*/}}

{{/* OpenTelemetry for a service or worker (services/kit/tracing.py: off unless an OTLP endpoint is
set): the collector's OTLP/HTTP endpoint, the component's name, and resource attributes naming
the release's namespace and the pod (from the downward API, defined before the attributes that
expand it), and the share of orders traced (decided where an order's trace starts, at the
gateway, and followed by every hop). Nothing when tracing.otlpEndpoint is empty.
Usage: include "realtimeorder.tracing.env" (dict "root" $ "name" "orders") */}}
{{- define "realtimeorder.tracing.env" -}}
{{- $tracing := .root.Values.tracing -}}
{{- if $tracing.otlpEndpoint }}
{{- $attributes := dict "k8s.namespace.name" .root.Release.Namespace "k8s.pod.name" "$(OTEL_K8S_POD_NAME)" "service.namespace" (include "realtimeorder.fullname" .root) "deployment.environment" .root.Values.appEnv -}}
{{- $attributes = merge (deepCopy ($tracing.resourceAttributes | default dict)) $attributes -}}
{{- $pairs := list -}}
{{- range $key, $value := $attributes -}}
{{- $pairs = append $pairs (printf "%s=%v" $key $value) -}}
{{- end }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ $tracing.otlpEndpoint | quote }}
- name: OTEL_SERVICE_NAME
  value: {{ .name | quote }}
- name: OTEL_K8S_POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ join "," $pairs | quote }}
- name: OTEL_TRACES_SAMPLER
  value: parentbased_traceidratio
- name: OTEL_TRACES_SAMPLER_ARG
  value: {{ $tracing.sampleRatio | toString | quote }}
{{- end }}
{{- end -}}

{{/* The gateway's own variables; the upstream URLs come from the shared ConfigMap. */}}
{{- define "realtimeorder.gateway.env" -}}
- name: CORS_ORIGINS
  value: {{ include "realtimeorder.corsOrigins" . | quote }}
{{- with .Values.gateway.forwardedAllowIps }}
- name: FORWARDED_ALLOW_IPS
  value: {{ . | quote }}
{{- end }}
{{- end -}}

{{/* The auth service's own variables: proxy trust for login limits and the first admin. */}}
{{- define "realtimeorder.auth.env" -}}
- name: TRUSTED_PROXIES
  value: {{ .Values.auth.trustedProxies | quote }}
{{- with .Values.auth.admin }}
{{- if and .email (or .password .existingSecret) }}
- name: ADMIN_EMAIL
  value: {{ .email | quote }}
- name: ADMIN_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .existingSecret | default (printf "%s-admin" (include "realtimeorder.auth.fullname" $)) }}
      key: {{ .existingSecretKey }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Inventory's own variable: whether it loads the demo catalogue at start. */}}
{{- define "realtimeorder.inventory.env" -}}
- name: SEED_DEMO_CATALOGUE
  value: {{ .Values.inventory.seedDemoCatalogue | quote }}
{{- end -}}

{{/* Notifications' own variables: whether it declares its RabbitMQ queues itself, or (when the
chart renders NotificationQueues, which the operator reconciles) only checks that they exist; and
the retry delays and attempts those queues have (the retry queues it checks are named by the
delays). */}}
{{- define "realtimeorder.notifications.env" -}}
- name: DECLARE_QUEUES
  value: {{ not .Values.notificationQueues.enabled | quote }}
- name: RETRY_DELAYS_SECONDS
  value: {{ .Values.notificationQueues.retryDelaysSeconds | toJson | trimPrefix "[" | trimSuffix "]" | quote }}
- name: MAX_ATTEMPTS
  value: {{ .Values.notificationQueues.maxAttempts | int64 | quote }}
{{- end -}}

{{/* Analytics' own variables: where the live figures come from, its consumer group, and how long
it waits on Prometheus and the brokers (the management API's URL and credentials come from
`uses: rabbitmq-management`). */}}
{{- define "realtimeorder.analytics.env" -}}
{{- with .Values.analytics }}
- name: PROMETHEUS_URL
  value: {{ .prometheusUrl | quote }}
- name: PROMETHEUS_TIMEOUT_SECONDS
  value: {{ .prometheusTimeoutSeconds | quote }}
- name: MONITOR_TIMEOUT_SECONDS
  value: {{ .monitorTimeoutSeconds | quote }}
- name: KAFKA_CONSUMER_GROUP
  value: {{ .consumerGroup | quote }}
{{- end }}
{{- end -}}

{{/* What every notification worker reads beside PORT and its connection variables (DB_* from
the services' ConfigMap and DB_PASSWORD, RABBITMQ_URL). The retry delays and attempts are those
of the NotificationQueue of its work queue, so the worker parks a message in retry queues that
exist and gives up when the queue's delivery limit would. Takes the component entry. */}}
{{- define "realtimeorder.worker.env" -}}
{{- $queue := include "realtimeorder.notificationQueue" (dict "root" .root "name" .queue) | fromJson -}}
- name: RETRY_DELAYS_SECONDS
  value: {{ $queue.retryDelaysSeconds | toJson | trimPrefix "[" | trimSuffix "]" | quote }}
- name: MAX_ATTEMPTS
  value: {{ $queue.maxAttempts | int64 | quote }}
- name: WORKER_PREFETCH
  value: {{ .values.prefetch | quote }}
- name: PROVIDER_TIMEOUT_SECONDS
  value: {{ .values.providerTimeoutSeconds | quote }}
{{- end -}}

{{/* The name of the Secret holding a worker's provider password or token: the existing one
named in its values, or the one the chart generates from them (config/secrets.yaml).
Usage: include "realtimeorder.worker.secretName" (dict "root" $ "name" "email-worker" "credentials" .Values.workers.email.smtp) */}}
{{- define "realtimeorder.worker.secretName" -}}
{{- .credentials.existingSecret | default (include "realtimeorder.componentFullname" (dict "root" .root "name" .name)) -}}
{{- end -}}

{{/* The email worker's SMTP server; the password comes from a Secret. */}}
{{- define "realtimeorder.emailWorker.env" -}}
{{- $email := .Values.workers.email -}}
{{- with $email.smtp.host }}
- name: SMTP_HOST
  value: {{ . | quote }}
{{- end }}
- name: SMTP_PORT
  value: {{ $email.smtp.port | quote }}
- name: SMTP_TLS
  value: {{ $email.smtp.tls | quote }}
{{- with $email.smtp.username }}
- name: SMTP_USERNAME
  value: {{ . | quote }}
{{- end }}
{{- if or $email.smtp.password $email.smtp.existingSecret }}
- name: SMTP_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "realtimeorder.worker.secretName" (dict "root" . "name" "email-worker" "credentials" $email.smtp) }}
      key: {{ $email.smtp.existingSecretKey }}
{{- end }}
{{- with $email.mailFrom }}
- name: MAIL_FROM
  value: {{ . | quote }}
{{- end }}
{{- end -}}

{{/* An HTTP provider's URL and bearer token (SMS_PROVIDER_*, PUSH_PROVIDER_*).
Usage: include "realtimeorder.worker.providerEnv" (dict "root" $ "name" "sms-worker" "prefix" "SMS" "provider" .Values.workers.sms.provider) */}}
{{- define "realtimeorder.worker.providerEnv" -}}
{{- with .provider.url }}
- name: {{ $.prefix }}_PROVIDER_URL
  value: {{ . | quote }}
{{- end }}
{{- if or .provider.token .provider.existingSecret }}
- name: {{ .prefix }}_PROVIDER_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "realtimeorder.worker.secretName" (dict "root" .root "name" .name "credentials" .provider) }}
      key: {{ .provider.existingSecretKey }}
{{- end }}
{{- end -}}

{{- define "realtimeorder.smsWorker.env" -}}
{{- include "realtimeorder.worker.providerEnv" (dict "root" . "name" "sms-worker" "prefix" "SMS" "provider" .Values.workers.sms.provider) }}
{{- end -}}

{{- define "realtimeorder.pushWorker.env" -}}
{{- include "realtimeorder.worker.providerEnv" (dict "root" . "name" "push-worker" "prefix" "PUSH" "provider" .Values.workers.push.provider) }}
{{- end -}}
