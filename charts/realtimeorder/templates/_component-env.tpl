{{/*
The components' own environment variables, beside the ones every service gets: each list entry
in _component.tpl may name one of these as its `env`.
*/}}

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

{{/* Notifications' own variable: whether it declares its RabbitMQ queues itself, or (when the
chart renders NotificationQueues, which the operator reconciles) only checks that they exist. */}}
{{- define "realtimeorder.notifications.env" -}}
- name: DECLARE_QUEUES
  value: {{ not .Values.notificationQueues.enabled | quote }}
{{- end -}}
