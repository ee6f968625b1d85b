{{- define "realtimeorder.inventory.env" -}}
- name: SEED_DEMO_CATALOGUE
  value: {{ .Values.inventory.seedDemoCatalogue | quote }}
{{- end -}}
