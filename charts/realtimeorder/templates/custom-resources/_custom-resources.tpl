{{/* A Kubernetes object name from a topic or queue name ("order.created" stays as it is;
"Email_Queue" becomes "email-queue"), prefixed with the release's full name. */}}
{{- define "realtimeorder.crName" -}}
{{- printf "%s-%s" (include "realtimeorder.fullname" .root) (.name | lower | replace "_" "-" | replace ":" "-") | trunc 253 | trimSuffix "-" | trimSuffix "." -}}
{{- end -}}

{{/* The Deployment a WorkerAutoscaler entry targets: `targetName` as given, or the component
named by `target`. */}}
{{- define "realtimeorder.workerAutoscaler.targetName" -}}
{{- .scaler.targetName | default (include "realtimeorder.componentFullname" (dict "root" .root "name" .scaler.target)) -}}
{{- end -}}

{{/* "true" when a WorkerAutoscaler scales the component's Deployment: Helm then leaves its
replicas alone. Usage: include "realtimeorder.scaledByOperator" (dict "root" $ "name" "inventory") */}}
{{- define "realtimeorder.scaledByOperator" -}}
{{- $target := include "realtimeorder.componentFullname" . -}}
{{- range .root.Values.workerAutoscalers -}}
{{- if eq (include "realtimeorder.workerAutoscaler.targetName" (dict "root" $.root "scaler" .)) $target -}}true{{- end -}}
{{- end -}}
{{- end -}}
