{{/*
Names, labels and images shared by every template.

A component that other templates refer to by name has a `realtimeorder.<component>.fullname`
helper here; the others need none (see the chart README, "Adding a component").
*/}}

{{- define "realtimeorder.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "realtimeorder.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "realtimeorder.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* "<fullname>-<name>"; 52 characters at most so StatefulSet pod names and their revision
labels stay within 63. Usage: include "realtimeorder.componentFullname" (dict "root" $ "name" "auth") */}}
{{- define "realtimeorder.componentFullname" -}}
{{- printf "%s-%s" (include "realtimeorder.fullname" .root) .name | trunc 52 | trimSuffix "-" -}}
{{- end -}}

{{- define "realtimeorder.gateway.fullname" -}}{{ include "realtimeorder.componentFullname" (dict "root" . "name" "gateway") }}{{- end -}}
{{- define "realtimeorder.auth.fullname" -}}{{ include "realtimeorder.componentFullname" (dict "root" . "name" "auth") }}{{- end -}}
{{- define "realtimeorder.userApp.fullname" -}}{{ include "realtimeorder.componentFullname" (dict "root" . "name" "user-app") }}{{- end -}}
{{- define "realtimeorder.adminDashboard.fullname" -}}{{ include "realtimeorder.componentFullname" (dict "root" . "name" "admin-dashboard") }}{{- end -}}
{{- define "realtimeorder.operator.fullname" -}}{{ include "realtimeorder.componentFullname" (dict "root" . "name" "operator") }}{{- end -}}
{{- define "realtimeorder.postgresql.fullname" -}}{{ include "realtimeorder.componentFullname" (dict "root" . "name" "postgresql") }}{{- end -}}
{{- define "realtimeorder.redis.fullname" -}}{{ include "realtimeorder.componentFullname" (dict "root" . "name" "redis") }}{{- end -}}
{{- define "realtimeorder.kafka.fullname" -}}{{ include "realtimeorder.componentFullname" (dict "root" . "name" "kafka") }}{{- end -}}
{{- define "realtimeorder.rabbitmq.fullname" -}}{{ include "realtimeorder.componentFullname" (dict "root" . "name" "rabbitmq") }}{{- end -}}

{{- define "realtimeorder.selectorLabels" -}}
app.kubernetes.io/name: {{ include "realtimeorder.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "realtimeorder.labels" -}}
helm.sh/chart: {{ include "realtimeorder.chart" . }}
{{ include "realtimeorder.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: realtimeorder
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Usage: include "realtimeorder.componentLabels" (dict "root" $ "name" "auth") */}}
{{- define "realtimeorder.componentLabels" -}}
{{ include "realtimeorder.labels" .root }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{- define "realtimeorder.componentSelectorLabels" -}}
{{ include "realtimeorder.selectorLabels" .root }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{/* metadata.annotations from commonAnnotations plus the given map ("extra"); empty renders nothing.
Usage: include "realtimeorder.annotations" (dict "root" $ "extra" .Values.x.annotations) | nindent 2 */}}
{{- define "realtimeorder.annotations" -}}
{{- $all := merge (deepCopy (.extra | default dict)) (.root.Values.commonAnnotations | default dict) -}}
{{- with $all }}
annotations: {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* A container image reference. "image" is the component's image block; when it names no
repository, the platform image (.Values.image) fills in whatever it leaves empty.
Usage: include "realtimeorder.image" (dict "root" $ "image" .Values.auth.image) */}}
{{- define "realtimeorder.image" -}}
{{- $own := .image | default dict -}}
{{- $repository := $own.repository -}}
{{- $tag := $own.tag -}}
{{- $digest := $own.digest -}}
{{- if not $repository -}}
{{- $base := .root.Values.image -}}
{{- $repository = $base.repository -}}
{{- if not (or $tag $digest) -}}
{{- $tag = $base.tag -}}
{{- $digest = $base.digest -}}
{{- end -}}
{{- end -}}
{{- if $digest -}}
{{- printf "%s@%s" $repository $digest -}}
{{- else -}}
{{- printf "%s:%s" $repository (toString ($tag | default .root.Chart.AppVersion)) -}}
{{- end -}}
{{- end -}}

{{/* The operator's image (operator/Dockerfile: the one with kopf and the Kubernetes client,
which the services' image leaves out): operator.image, else image.repository with "-operator"
appended and image.tag. */}}
{{- define "realtimeorder.operatorImage" -}}
{{- $own := .Values.operator.image | default dict -}}
{{- if $own.repository -}}
{{- include "realtimeorder.image" (dict "root" . "image" $own) -}}
{{- else -}}
{{- $image := dict "repository" (printf "%s-operator" .Values.image.repository) "tag" ($own.tag | default .Values.image.tag) "digest" $own.digest -}}
{{- include "realtimeorder.image" (dict "root" . "image" $image) -}}
{{- end -}}
{{- end -}}

{{- define "realtimeorder.imagePullSecrets" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets: {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Pod and container security contexts: the component's own settings over the chart-wide ones.
Usage: include "realtimeorder.podSecurityContext" (dict "root" $ "values" .Values.auth) */}}
{{- define "realtimeorder.podSecurityContext" -}}
{{- toYaml (mergeOverwrite (deepCopy .root.Values.podSecurityContext) (.values.podSecurityContext | default dict)) -}}
{{- end -}}

{{- define "realtimeorder.containerSecurityContext" -}}
{{- toYaml (mergeOverwrite (deepCopy .root.Values.containerSecurityContext) (.values.containerSecurityContext | default dict)) -}}
{{- end -}}

{{/* A probe from its values ({enabled, periodSeconds, ...}) on an HTTP path of the named port.
Usage: include "realtimeorder.httpProbe" (dict "probe" .Values.auth.probes.liveness "path" "/healthz" "port" "http") */}}
{{- define "realtimeorder.httpProbe" -}}
httpGet:
  path: {{ .path }}
  port: {{ .port }}
{{ toYaml (omit .probe "enabled") }}
{{- end -}}

{{/* Sets "values" in a component entry (a dict with "root" and "key", as the list in
_component.tpl gives them): the values block its key names, a dotted path for a nested block
(workers.email). Renders nothing: the entry itself carries the answer.
Usage: {{- $_ := include "realtimeorder.componentValues" $entry }} ... $entry.values */}}
{{- define "realtimeorder.componentValues" -}}
{{- $values := .root.Values -}}
{{- range splitList "." .key -}}
{{- $values = index $values . | default dict -}}
{{- end -}}
{{- $_ := set . "values" $values -}}
{{- end -}}

{{/* The ServiceAccount name of a component. Usage: (dict "root" $ "key" "auth" "name" "auth") */}}
{{- define "realtimeorder.serviceAccountName" -}}
{{- $_ := include "realtimeorder.componentValues" . -}}
{{- $values := .values -}}
{{- if $values.serviceAccount.create -}}
{{- $values.serviceAccount.name | default (include "realtimeorder.componentFullname" (dict "root" .root "name" .name)) -}}
{{- else -}}
{{- $values.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{/* The preStop hook: keep serving while endpoints and proxies stop sending new requests. */}}
{{- define "realtimeorder.preStop" -}}
{{- if gt (int .seconds) 0 }}
lifecycle:
  preStop:
    sleep:
      seconds: {{ .seconds }}
{{- end }}
{{- end -}}

{{/* Scheduling fields shared by every pod spec. Usage: include "realtimeorder.scheduling" .Values.auth */}}
{{- define "realtimeorder.scheduling" -}}
{{- with .priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .nodeSelector }}
nodeSelector: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .topologySpreadConstraints }}
topologySpreadConstraints: {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* A label selector string ("k=v,k2=v2") from a map of labels. */}}
{{- define "realtimeorder.labelSelector" -}}
{{- $pairs := list -}}
{{- range $key, $value := . -}}
{{- $pairs = append $pairs (printf "%s=%s" $key $value) -}}
{{- end -}}
{{- join "," $pairs -}}
{{- end -}}

{{/* Cookie affinity to the gateway for the Ingress controller named by ingress.className, as a
YAML map of annotations: "ingress" for the Ingress itself (ingress-nginx, HAProxy), "service" for
the gateway's Service (Traefik reads its sticky cookie there). Empty when ingress or its
sessionAffinity is off, or the controller is not one of these.
Usage: include "realtimeorder.ingress.affinityAnnotations" (dict "root" $ "on" "ingress") | fromYaml */}}
{{- define "realtimeorder.ingress.affinityAnnotations" -}}
{{- $ingress := .root.Values.ingress -}}
{{- $affinity := $ingress.sessionAffinity -}}
{{- $class := $ingress.className | lower -}}
{{- if and $ingress.enabled $affinity.enabled -}}
{{- if and (eq .on "ingress") (contains "nginx" $class) }}
nginx.ingress.kubernetes.io/affinity: cookie
nginx.ingress.kubernetes.io/affinity-mode: persistent
nginx.ingress.kubernetes.io/session-cookie-name: {{ $affinity.cookieName | quote }}
nginx.ingress.kubernetes.io/session-cookie-max-age: {{ $affinity.maxAgeSeconds | quote }}
{{- else if and (eq .on "ingress") (contains "haproxy" $class) }}
haproxy.org/cookie-persistence: {{ $affinity.cookieName | quote }}
{{- else if and (eq .on "service") (contains "traefik" $class) }}
traefik.ingress.kubernetes.io/service.sticky.cookie: "true"
traefik.ingress.kubernetes.io/service.sticky.cookie.name: {{ $affinity.cookieName | quote }}
traefik.ingress.kubernetes.io/service.sticky.cookie.maxage: {{ $affinity.maxAgeSeconds | quote }}
{{- end }}
{{- end -}}
{{- end -}}

{{/* A container's env: the chart's variables ("env", a list) with "extra" (a component's
extraEnv) laid over them. An extra variable of a name the chart sets replaces the chart's in
its place, so variables that expand it with $(NAME) further down still see it; the others are
appended. Two entries of one name would make the API server warn and server-side apply keep
only one. Renders a YAML list.
Usage: include "realtimeorder.mergeEnv" (dict "env" $chartEnv "extra" .Values.x.extraEnv) | fromYamlArray */}}
{{- define "realtimeorder.mergeEnv" -}}
{{- $extra := dict -}}
{{- range (.extra | default list) -}}
{{- $_ := set $extra .name . -}}
{{- end -}}
{{- $env := list -}}
{{- $replaced := dict -}}
{{- range (.env | default list) -}}
{{- if hasKey $extra .name -}}
{{- $env = append $env (get $extra .name) -}}
{{- $_ := set $replaced .name true -}}
{{- else -}}
{{- $env = append $env . -}}
{{- end -}}
{{- end -}}
{{- range (.extra | default list) -}}
{{- if not (hasKey $replaced .name) -}}
{{- $env = append $env . -}}
{{- end -}}
{{- end -}}
{{- toYaml $env -}}
{{- end -}}
