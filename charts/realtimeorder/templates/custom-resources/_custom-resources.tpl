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

{{/* A NotificationQueue's settings as the chart renders it: the queue's entry in
notificationQueues.queues over the notificationQueues defaults (a queue not listed there gets the
defaults; "listed" says which), as JSON (whose numbers come back as floats: print them with
int64). The workers take their retry delays and attempts from here, so they always agree with
the queues.
Usage: include "realtimeorder.notificationQueue" (dict "root" $ "name" "email.notifications") | fromJson */}}
{{- define "realtimeorder.notificationQueue" -}}
{{- $defaults := .root.Values.notificationQueues -}}
{{- $queue := dict -}}
{{- range $defaults.queues -}}
{{- if eq .name $.name }}{{ $queue = . }}{{ end -}}
{{- end -}}
{{- dict
    "name" .name
    "listed" (not (empty $queue))
    "vhost" ($queue.vhost | default $defaults.vhost)
    "type" ($queue.type | default $defaults.type)
    "maxAttempts" ($queue.maxAttempts | default $defaults.maxAttempts)
    "retryDelaysSeconds" ($queue.retryDelaysSeconds | default $defaults.retryDelaysSeconds)
    "deadLetterQueue" ($queue.deadLetterQueue | default $defaults.deadLetterQueue)
    "messageTtlSeconds" ($queue.messageTtlSeconds | default $defaults.messageTtlSeconds)
    "deletionPolicy" ($queue.deletionPolicy | default $defaults.deletionPolicy)
  | toJson -}}
{{- end -}}
