{{/* RabbitMQ users of the release's RabbitmqCluster in operator.rabbitmqMode topology
(SECURITY.md, "Broker users"): a User and a Permission of the messaging topology operator per
component that uses RabbitMQ, instead of the cluster's administrator ("default user"). Each is
limited to the queues it uses on the one virtual host "/": the service publishes the
deliveries, each channel worker consumes its work queue and publishes its retries and dead
letters (always through the default exchange, amq.default; the messaging topology operator
declares the queues), and analytics and this release's operator only read queue figures from
the management API (tag monitoring): the operator's NotificationQueue status and queueDepth
WorkerAutoscalers, as in topology mode it renders Queue and Policy objects instead of declaring
anything itself. */}}
{{- define "realtimeorder.rabbitmq.users" -}}
{{- $users := dict -}}
{{- if and .Values.rabbitmq.enabled (eq .Values.operator.rabbitmqMode "topology") -}}
{{- if and .Values.notifications.enabled (has "rabbitmq" .Values.notifications.uses) -}}
{{- $_ := set $users "notifications" (dict "write" "^amq\\.default$" "read" "^$" "tags" list) -}}
{{- end -}}
{{- range $channel := list "email" "sms" "push" -}}
{{- $values := index $.Values.workers $channel -}}
{{- if and $values.enabled (has "rabbitmq" ($values.uses | default list)) -}}
{{- $_ := set $users (printf "%s-worker" $channel) (dict "write" "^amq\\.default$" "read" (printf "^%s\\.notifications$" $channel) "tags" list) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.analytics.enabled (has "rabbitmq-management" .Values.analytics.uses) -}}
{{- $_ := set $users "analytics" (dict "write" "^$" "read" "^$" "tags" (list "monitoring")) -}}
{{- end -}}
{{- if .Values.operator.enabled -}}
{{- $_ := set $users "operator" (dict "write" "^$" "read" "^$" "tags" (list "monitoring")) -}}
{{- end -}}
{{- end -}}
{{- toJson $users -}}
{{- end -}}

{{/* The User (and the Secret of its credentials) of a component. */}}
{{- define "realtimeorder.rabbitmq.userName" -}}
{{- printf "%s-rabbitmq-%s" (include "realtimeorder.fullname" .root) .name -}}
{{- end -}}

{{/* RABBITMQ_USERNAME and RABBITMQ_PASSWORD of a component's own user, as an env list (maybe
empty); they replace the default user's in place, before RABBITMQ_URL uses them. */}}
{{- define "realtimeorder.rabbitmq.userEnv" -}}
{{- $users := include "realtimeorder.rabbitmq.users" .root | fromJson -}}
{{- if hasKey $users .name }}
- name: RABBITMQ_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ include "realtimeorder.rabbitmq.userName" . }}
      key: username
- name: RABBITMQ_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "realtimeorder.rabbitmq.userName" . }}
      key: password
{{- else -}}
[]
{{- end -}}
{{- end -}}
