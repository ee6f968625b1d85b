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
