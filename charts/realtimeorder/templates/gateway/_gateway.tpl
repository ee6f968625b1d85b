{{/* The gateway's own variables; the upstream URLs come from the shared ConfigMap. */}}
{{- define "realtimeorder.gateway.env" -}}
- name: CORS_ORIGINS
  value: {{ include "realtimeorder.corsOrigins" . | quote }}
{{- with .Values.gateway.forwardedAllowIps }}
- name: FORWARDED_ALLOW_IPS
  value: {{ . | quote }}
{{- end }}
{{- end -}}
