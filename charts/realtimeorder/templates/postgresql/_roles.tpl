{{/* One PostgreSQL role per service, owning only its schema (SECURITY.md, "Database roles").
The role, its schema and its service share a name; the notification workers use
notifications' role. Only the chart's own PostgreSQL (statefulset or CloudNativePG) gets them:
an external database keeps the one user of externalDatabase. */}}

{{/* The services that get a role: those whose `uses` lists postgresql. */}}
{{- define "realtimeorder.postgresql.roles" -}}
{{- $roles := list -}}
{{- if .Values.postgresql.enabled -}}
{{- range $name := list "auth" "orders" "inventory" "notifications" "analytics" -}}
{{- if has "postgresql" ((index $.Values $name).uses | default list) -}}
{{- $roles = append $roles $name -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toJson $roles -}}
{{- end -}}

{{- define "realtimeorder.postgresql.roleSecretName" -}}
{{- printf "%s-%s" (include "realtimeorder.postgresql.fullname" .root) .role -}}
{{- end -}}

{{/* The role a component connects as (empty: the shared user). Takes the component entry with
"root", after realtimeorder.componentValues. */}}
{{- define "realtimeorder.postgresql.componentRole" -}}
{{- $roles := include "realtimeorder.postgresql.roles" .root | fromJsonArray -}}
{{- $role := ternary "notifications" .name (eq .type "worker") -}}
{{- if and (has "postgresql" (.values.uses | default list)) (has $role $roles) -}}
{{- $role -}}
{{- end -}}
{{- end -}}

{{/* DB_USER and DB_PASSWORD of a component's own role, as an env list (maybe empty). */}}
{{- define "realtimeorder.postgresql.roleEnv" -}}
{{- $role := include "realtimeorder.postgresql.componentRole" . -}}
{{- if $role }}
- name: DB_USER
  value: {{ $role | quote }}
- name: DB_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "realtimeorder.postgresql.roleSecretName" (dict "root" .root "role" $role) }}
      key: password
{{- else -}}
[]
{{- end -}}
{{- end -}}
