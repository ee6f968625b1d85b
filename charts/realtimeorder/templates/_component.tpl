{{/*
The platform's components and the resources each renders from its values block:
templates/components.yaml includes the resource templates below for every entry of
`realtimeorder.components`.

An entry of the list:
  key          the component's values block (gateway, userApp...), a dotted path for a nested
               one (workers.email)
  name         its resource suffix and app.kubernetes.io/component label (gateway, user-app...);
               for a Python service, its name in services/registry.py
  type         "service": a Python service of the platform image (`realtimeorder serve <name>`),
               with /healthz, /readyz and /metrics (and a ServiceMonitor);
               "worker": a notification channel worker of the platform image (`realtimeorder
               worker <channel>`), with /healthz, /readyz and /metrics on its port but no
               Service (a PodMonitor instead), scaled by a WorkerAutoscaler on its queue;
               "web": a web app image (nginx on containerPort, /healthz, the runtime /config.json)
  channel      (workers) the channel it sends: email, sms or push
  queue        (workers) the work queue it consumes, a NotificationQueue of the chart
  env          (optional) name of a template rendering the component's own EnvVar list
               (templates/_component-env.tpl)
  urlVariable  (optional) the variable that gives the other services its URL, as named in
               services/registry.py; it goes into the services' ConfigMap (_config.tpl)

Every resource template takes such an entry with "root" (the chart's root context, $) added,
and finds its values block with realtimeorder.componentValues.
*/}}

{{- define "realtimeorder.components" -}}
- {key: gateway, name: gateway, type: service, env: realtimeorder.gateway.env}
- {key: auth, name: auth, type: service, env: realtimeorder.auth.env, urlVariable: AUTH_SERVICE_URL}
- {key: orders, name: orders, type: service, urlVariable: ORDER_SERVICE_URL}
- {key: inventory, name: inventory, type: service, env: realtimeorder.inventory.env, urlVariable: INVENTORY_SERVICE_URL}
- {key: notifications, name: notifications, type: service, env: realtimeorder.notifications.env, urlVariable: NOTIFICATION_SERVICE_URL}
- {key: analytics, name: analytics, type: service, env: realtimeorder.analytics.env, urlVariable: ANALYTICS_SERVICE_URL}
- {key: workers.email, name: email-worker, type: worker, channel: email, queue: email.notifications, env: realtimeorder.emailWorker.env}
- {key: workers.sms, name: sms-worker, type: worker, channel: sms, queue: sms.notifications, env: realtimeorder.smsWorker.env}
- {key: workers.push, name: push-worker, type: worker, channel: push, queue: push.notifications, env: realtimeorder.pushWorker.env}
- {key: userApp, name: user-app, type: web}
- {key: adminDashboard, name: admin-dashboard, type: web}
{{- end -}}

{{/* The resource templates each type of component renders, in this order. */}}
{{- define "realtimeorder.componentResources" -}}
{{- if eq .type "service" -}}
[serviceAccount, service, deployment, hpa, pdb, networkPolicy, serviceMonitor]
{{- else if eq .type "worker" -}}
[serviceAccount, deployment, pdb, networkPolicy, podMonitor]
{{- else -}}
[serviceAccount, service, deployment, hpa, pdb, networkPolicy]
{{- end -}}
{{- end -}}

{{- define "realtimeorder.component.deployment" -}}
{{- $root := .root -}}
{{- $_ := include "realtimeorder.componentValues" . -}}
{{- $values := .values -}}
{{- $ctx := dict "root" $root "name" .name -}}
{{- $isService := eq .type "service" -}}
{{- $isWorker := eq .type "worker" -}}
{{- /* Services and workers run the platform image with the services' configuration. */}}
{{- $isPython := or $isService $isWorker -}}
{{- if $values.enabled }}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "realtimeorder.componentFullname" $ctx }}
  namespace: {{ $root.Release.Namespace }}
  labels: {{- include "realtimeorder.componentLabels" $ctx | nindent 4 }}
  {{- include "realtimeorder.annotations" (dict "root" $root) | nindent 2 }}
spec:
  {{- /* Left to the HPA (services, web apps) or the operator's WorkerAutoscaler (workers' own
  autoscaling, or a workerAutoscalers entry) when one scales this Deployment: an upgrade then
  keeps the replicas the scaler set. */}}
  {{- if not (or $values.autoscaling.enabled (include "realtimeorder.scaledByOperator" $ctx)) }}
  replicas: {{ $values.replicaCount }}
  {{- end }}
  revisionHistoryLimit: 5
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 25%
      maxUnavailable: 0
  selector:
    matchLabels: {{- include "realtimeorder.componentSelectorLabels" $ctx | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "realtimeorder.componentSelectorLabels" $ctx | nindent 8 }}
        {{- if $isPython }}
        {{- include "realtimeorder.usesLabels" $values | nindent 8 }}
        {{- end }}
        {{- with $values.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        kubectl.kubernetes.io/default-container: {{ .name }}
        {{- if $isPython }}
        {{- /* For Prometheus servers that discover pods by annotation. */}}
        prometheus.io/scrape: "true"
        prometheus.io/port: {{ $root.Values.metricsPort | quote }}
        prometheus.io/path: /metrics
        checksum/config: {{ include "realtimeorder.config.data" $root | sha256sum }}
        {{- if $isWorker }}
        {{- /* A changed provider password or token restarts the worker that reads it. */}}
        checksum/credentials: {{ pick $values "smtp" "provider" | toJson | sha256sum }}
        {{- end }}
        {{- else }}
        checksum/config: {{ include "realtimeorder.webConfig.data" $root | sha256sum }}
        {{- end }}
        {{- with $values.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "realtimeorder.serviceAccountName" (dict "root" $root "key" .key "name" .name) }}
      # The services and workers never call the Kubernetes API.
      automountServiceAccountToken: false
      # Service links would add *_PORT variables that can shadow settings such as DB_PORT.
      enableServiceLinks: false
      {{- include "realtimeorder.imagePullSecrets" $root | nindent 6 }}
      securityContext: {{- include "realtimeorder.podSecurityContext" (dict "root" $root "values" $values) | nindent 8 }}
      terminationGracePeriodSeconds: {{ $values.terminationGracePeriodSeconds }}
      {{- include "realtimeorder.scheduling" (include "realtimeorder.componentScheduling" . | fromYaml) | nindent 6 }}
      containers:
        - name: {{ .name }}
          image: {{ include "realtimeorder.image" (dict "root" $root "image" $values.image) | quote }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          {{- if $isService }}
          args: ["serve", {{ .name | quote }}]
          {{- else if $isWorker }}
          args: ["worker", {{ .channel | quote }}]
          {{- end }}
          ports:
            - name: http
              containerPort: {{ $values.containerPort }}
              protocol: TCP
            {{- if $isPython }}
            - name: metrics
              containerPort: {{ $root.Values.metricsPort }}
              protocol: TCP
            {{- end }}
          {{- $env := include "realtimeorder.component.env" . | fromYamlArray }}
          {{- /* Each service's own database role and broker users replace the shared ones. */}}
          {{- $own := concat (include "realtimeorder.postgresql.roleEnv" . | fromYamlArray) (include "realtimeorder.kafka.userEnv" . | fromYamlArray) (include "realtimeorder.rabbitmq.userEnv" . | fromYamlArray) }}
          {{- $env = include "realtimeorder.mergeEnv" (dict "env" $env "extra" $own) | fromYamlArray }}
          {{- with include "realtimeorder.mergeEnv" (dict "env" $env "extra" $values.extraEnv) | fromYamlArray }}
          env: {{- toYaml . | nindent 12 }}
          {{- end }}
          {{- if or $isPython $values.extraEnvFrom }}
          envFrom:
            {{- if $isPython }}
            - configMapRef:
                name: {{ include "realtimeorder.fullname" $root }}-env
            {{- end }}
            {{- with $values.extraEnvFrom }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          {{- end }}
          {{- with $values.probes }}
          {{- if .startup.enabled }}
          startupProbe: {{- include "realtimeorder.httpProbe" (dict "probe" .startup "path" "/healthz" "port" "http") | nindent 12 }}
          {{- end }}
          {{- if .liveness.enabled }}
          livenessProbe: {{- include "realtimeorder.httpProbe" (dict "probe" .liveness "path" "/healthz" "port" "http") | nindent 12 }}
          {{- end }}
          {{- if .readiness.enabled }}
          readinessProbe: {{- include "realtimeorder.httpProbe" (dict "probe" .readiness "path" (ternary "/readyz" "/healthz" $isPython) "port" "http") | nindent 12 }}
          {{- end }}
          {{- end }}
          {{- include "realtimeorder.preStop" (dict "seconds" $values.preStopSleepSeconds) | nindent 10 }}
          resources: {{- toYaml $values.resources | nindent 12 }}
          securityContext: {{- include "realtimeorder.containerSecurityContext" (dict "root" $root "values" $values) | nindent 12 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
            {{- if and $isPython (has "kafka" ($values.uses | default list)) }}
            {{- include "realtimeorder.kafka.caVolume" (dict "root" $root "part" "mounts") | nindent 12 }}
            {{- end }}
            {{- if eq .type "web" }}
            - name: web-config
              mountPath: /usr/share/nginx/html/config.json
              subPath: config.json
              readOnly: true
            {{- end }}
            {{- if eq .name "auth" }}
            - name: token-signing-key
              mountPath: {{ include "realtimeorder.jwt.privateKeyPath" $root | dir }}
              readOnly: true
            {{- end }}
      volumes:
        - name: tmp
          emptyDir:
            sizeLimit: {{ $root.Values.tmpVolume.sizeLimit }}
        {{- if and $isPython (has "kafka" ($values.uses | default list)) }}
        {{- include "realtimeorder.kafka.caVolume" (dict "root" $root "part" "volumes") | nindent 8 }}
        {{- end }}
        {{- if eq .type "web" }}
        - name: web-config
          configMap:
            name: {{ include "realtimeorder.fullname" $root }}-web-config
        {{- end }}
        {{- if eq .name "auth" }}
        # The tokens' private key: auth's alone, the one key of the Secret it is given.
        - name: token-signing-key
          secret:
            secretName: {{ include "realtimeorder.jwt.secretName" $root }}
            defaultMode: 0400
            items:
              - key: {{ $root.Values.jwt.privateKeyKey }}
                path: {{ include "realtimeorder.jwt.privateKeyPath" $root | base }}
        {{- end }}
{{- end }}
{{- end -}}

{{/* The variables the chart sets on a component's container, as a YAML list (before extraEnv,
which realtimeorder.mergeEnv lays over them). Takes the component entry with "root". */}}
{{- define "realtimeorder.component.env" -}}
{{- $root := .root -}}
{{- $_ := include "realtimeorder.componentValues" . -}}
{{- $values := .values -}}
{{- $isService := eq .type "service" -}}
{{- $isWorker := eq .type "worker" -}}
{{- $isPython := or $isService $isWorker -}}
{{- if $isPython }}
- name: PORT
  value: {{ $values.containerPort | quote }}
- name: METRICS_PORT
  value: {{ $root.Values.metricsPort | quote }}
{{- include "realtimeorder.tracing.env" (dict "root" $root "name" .name) | nindent 0 }}
{{- if $isService }}
- name: JWT_PUBLIC_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "realtimeorder.jwt.secretName" $root }}
      key: {{ $root.Values.jwt.publicKeyKey }}
{{- if eq .name "auth" }}
- name: JWT_PRIVATE_KEY_FILE
  value: {{ include "realtimeorder.jwt.privateKeyPath" $root }}
{{- end }}
{{- end }}
{{- include "realtimeorder.backingEnv" (dict "root" $root "uses" $values.uses) | nindent 0 }}
{{- end }}
{{- if $isWorker }}
{{- include "realtimeorder.worker.env" . | nindent 0 }}
{{- end }}
{{- with .env }}
{{- include . $root | nindent 0 }}
{{- end }}
{{- end -}}

{{- define "realtimeorder.component.service" -}}
{{- $root := .root -}}
{{- $_ := include "realtimeorder.componentValues" . -}}
{{- $values := .values -}}
{{- $ctx := dict "root" $root "name" .name -}}
{{- if $values.enabled }}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "realtimeorder.componentFullname" $ctx }}
  namespace: {{ $root.Release.Namespace }}
  labels: {{- include "realtimeorder.componentLabels" $ctx | nindent 4 }}
  {{- $annotations := $values.service.annotations | default dict }}
  {{- if eq .name "gateway" }}
  {{- $affinity := include "realtimeorder.ingress.affinityAnnotations" (dict "root" $root "on" "service") | fromYaml }}
  {{- $annotations = merge (deepCopy $annotations) $affinity }}
  {{- end }}
  {{- include "realtimeorder.annotations" (dict "root" $root "extra" $annotations) | nindent 2 }}
spec:
  type: {{ $values.service.type }}
  sessionAffinity: {{ $values.service.sessionAffinity }}
  ports:
    - name: http
      port: {{ $values.service.port }}
      targetPort: http
      protocol: TCP
      appProtocol: http
    {{- if eq .type "service" }}
    # For Prometheus only: no Ingress or HTTPRoute routes to it.
    - name: metrics
      port: {{ $root.Values.metricsPort }}
      targetPort: metrics
      protocol: TCP
      appProtocol: http
    {{- end }}
  selector: {{- include "realtimeorder.componentSelectorLabels" $ctx | nindent 4 }}
{{- end }}
{{- end -}}

{{- define "realtimeorder.component.serviceAccount" -}}
{{- $root := .root -}}
{{- $_ := include "realtimeorder.componentValues" . -}}
{{- $values := .values -}}
{{- $ctx := dict "root" $root "name" .name -}}
{{- if and $values.enabled $values.serviceAccount.create }}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "realtimeorder.serviceAccountName" (dict "root" $root "key" .key "name" .name) }}
  namespace: {{ $root.Release.Namespace }}
  labels: {{- include "realtimeorder.componentLabels" $ctx | nindent 4 }}
  {{- include "realtimeorder.annotations" (dict "root" $root "extra" $values.serviceAccount.annotations) | nindent 2 }}
automountServiceAccountToken: false
{{- end }}
{{- end -}}

{{- define "realtimeorder.component.hpa" -}}
{{- $root := .root -}}
{{- $_ := include "realtimeorder.componentValues" . -}}
{{- $values := .values -}}
{{- $ctx := dict "root" $root "name" .name -}}
{{- if and $values.enabled $values.autoscaling.enabled }}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ include "realtimeorder.componentFullname" $ctx }}
  namespace: {{ $root.Release.Namespace }}
  labels: {{- include "realtimeorder.componentLabels" $ctx | nindent 4 }}
  {{- include "realtimeorder.annotations" (dict "root" $root) | nindent 2 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "realtimeorder.componentFullname" $ctx }}
  minReplicas: {{ $values.autoscaling.minReplicas }}
  maxReplicas: {{ $values.autoscaling.maxReplicas }}
  metrics:
    {{- with $values.autoscaling.targetCPUUtilizationPercentage }}
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ . }}
    {{- end }}
    {{- with $values.autoscaling.targetMemoryUtilizationPercentage }}
    - type: Resource
      resource:
        name: memory
        target:
          type: Utilization
          averageUtilization: {{ . }}
    {{- end }}
  behavior:
    # Scale down slowly: Socket.IO clients and in-flight consumers move on every removal.
    scaleDown:
      stabilizationWindowSeconds: 300
      policies:
        - type: Pods
          value: 1
          periodSeconds: 60
{{- end }}
{{- end -}}

{{- define "realtimeorder.component.pdb" -}}
{{- $root := .root -}}
{{- $_ := include "realtimeorder.componentValues" . -}}
{{- $values := .values -}}
{{- $ctx := dict "root" $root "name" .name -}}
{{- if and $values.enabled $values.pdb.create }}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "realtimeorder.componentFullname" $ctx }}
  namespace: {{ $root.Release.Namespace }}
  labels: {{- include "realtimeorder.componentLabels" $ctx | nindent 4 }}
  {{- include "realtimeorder.annotations" (dict "root" $root) | nindent 2 }}
spec:
  {{- $minAvailable := $values.pdb.minAvailable | default "" | toString }}
  {{- if $minAvailable }}
  minAvailable: {{ $minAvailable }}
  {{- else }}
  maxUnavailable: {{ $values.pdb.maxUnavailable | default 1 }}
  {{- end }}
  selector:
    matchLabels: {{- include "realtimeorder.componentSelectorLabels" $ctx | nindent 6 }}
{{- end }}
{{- end -}}

{{/* Ingress rules: the release's callers named in networkPolicy.allowFrom, the public when
allowExternal, Prometheus when monitoring is on, plus extraIngress. No rule denies all (a
worker, which nobody calls, admits only Prometheus). */}}
{{- define "realtimeorder.component.networkPolicy" -}}
{{- $root := .root -}}
{{- $_ := include "realtimeorder.componentValues" . -}}
{{- $values := .values -}}
{{- $ctx := dict "root" $root "name" .name -}}
{{- if and $values.enabled $root.Values.networkPolicy.enabled }}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "realtimeorder.componentFullname" $ctx }}
  namespace: {{ $root.Release.Namespace }}
  labels: {{- include "realtimeorder.componentLabels" $ctx | nindent 4 }}
  {{- include "realtimeorder.annotations" (dict "root" $root) | nindent 2 }}
spec:
  podSelector:
    matchLabels: {{- include "realtimeorder.componentSelectorLabels" $ctx | nindent 6 }}
  policyTypes: [Ingress]
  {{- $port := list (dict "port" "http" "protocol" "TCP") }}
  {{- $rules := list }}
  {{- if $values.networkPolicy.allowExternal }}
  {{- $rule := dict "ports" $port }}
  {{- with $root.Values.networkPolicy.externalFrom }}
  {{- $_ := set $rule "from" . }}
  {{- end }}
  {{- $rules = append $rules $rule }}
  {{- end }}
  {{- with $values.networkPolicy.allowFrom }}
  {{- $peers := list }}
  {{- range . }}
  {{- $peers = append $peers (dict "podSelector" (dict "matchLabels" (include "realtimeorder.componentSelectorLabels" (dict "root" $root "name" .) | fromYaml))) }}
  {{- end }}
  {{- $rules = append $rules (dict "ports" $port "from" $peers) }}
  {{- end }}
  {{- if and $root.Values.monitoring.enabled (ne .type "web") $root.Values.networkPolicy.metricsFrom }}
  {{- $rules = append $rules (dict "ports" (list (dict "port" "metrics" "protocol" "TCP")) "from" $root.Values.networkPolicy.metricsFrom) }}
  {{- end }}
  {{- $rules = concat $rules $values.networkPolicy.extraIngress }}
  ingress: {{- toYaml ($rules | default (list)) | nindent 4 }}
{{- end }}
{{- end -}}

{{- define "realtimeorder.component.serviceMonitor" -}}
{{- $root := .root -}}
{{- $_ := include "realtimeorder.componentValues" . -}}
{{- $values := .values -}}
{{- $ctx := dict "root" $root "name" .name -}}
{{- if and $values.enabled $root.Values.monitoring.enabled }}
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ include "realtimeorder.componentFullname" $ctx }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "realtimeorder.componentLabels" $ctx | nindent 4 }}
    {{- with $root.Values.monitoring.serviceMonitor.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- include "realtimeorder.annotations" (dict "root" $root) | nindent 2 }}
spec:
  selector:
    matchLabels: {{- include "realtimeorder.componentSelectorLabels" $ctx | nindent 6 }}
  namespaceSelector:
    matchNames: [{{ $root.Release.Namespace | quote }}]
  endpoints:
    - port: metrics
      path: /metrics
      # The services label their metrics with `service` themselves (kit/metrics.py); keep
      # that rather than Prometheus' target label of the same name.
      honorLabels: true
      interval: {{ $root.Values.monitoring.serviceMonitor.interval }}
      scrapeTimeout: {{ $root.Values.monitoring.serviceMonitor.scrapeTimeout }}
{{- end }}
{{- end -}}

{{/* Workers have no Service to select: Prometheus finds their pods. The job label is set to the
Deployment's name, as a ServiceMonitor's would be the Service's, so the alerts cover them. */}}
{{- define "realtimeorder.component.podMonitor" -}}
{{- $root := .root -}}
{{- $_ := include "realtimeorder.componentValues" . -}}
{{- $values := .values -}}
{{- $ctx := dict "root" $root "name" .name -}}
{{- if and $values.enabled $root.Values.monitoring.enabled }}
apiVersion: monitoring.coreos.com/v1
kind: PodMonitor
metadata:
  name: {{ include "realtimeorder.componentFullname" $ctx }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "realtimeorder.componentLabels" $ctx | nindent 4 }}
    {{- with $root.Values.monitoring.serviceMonitor.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- include "realtimeorder.annotations" (dict "root" $root) | nindent 2 }}
spec:
  selector:
    matchLabels: {{- include "realtimeorder.componentSelectorLabels" $ctx | nindent 6 }}
  namespaceSelector:
    matchNames: [{{ $root.Release.Namespace | quote }}]
  podMetricsEndpoints:
    - port: metrics
      path: /metrics
      honorLabels: true
      interval: {{ $root.Values.monitoring.serviceMonitor.interval }}
      scrapeTimeout: {{ $root.Values.monitoring.serviceMonitor.scrapeTimeout }}
      relabelings:
        - targetLabel: job
          replacement: {{ include "realtimeorder.componentFullname" $ctx }}
{{- end }}
{{- end -}}

{{/* A component's scheduling fields (realtimeorder.scheduling takes them): its own, plus, when it
may run several replicas and sets no affinity or spread of its own (scheduling.spreadReplicas), a
soft anti-affinity per node and a soft spread over zones, so one node or zone going down does not
take every replica with it. Soft: a one-node cluster still schedules them all. */}}
{{- define "realtimeorder.componentScheduling" -}}
{{- $root := .root -}}
{{- $values := .values -}}
{{- $ctx := dict "root" $root "name" .name -}}
{{- $scheduling := pick $values "priorityClassName" "nodeSelector" "tolerations" "affinity" "topologySpreadConstraints" -}}
{{- $several := or (gt (int $values.replicaCount) 1) $values.autoscaling.enabled (include "realtimeorder.scaledByOperator" $ctx) -}}
{{- if and $root.Values.scheduling.spreadReplicas $several (not $values.affinity) (not $values.topologySpreadConstraints) -}}
{{- $selector := dict "matchLabels" (include "realtimeorder.componentSelectorLabels" $ctx | fromYaml) -}}
{{- $term := dict "topologyKey" "kubernetes.io/hostname" "labelSelector" $selector -}}
{{- $_ := set $scheduling "affinity" (dict "podAntiAffinity" (dict "preferredDuringSchedulingIgnoredDuringExecution" (list (dict "weight" 100 "podAffinityTerm" $term)))) -}}
{{- $_ := set $scheduling "topologySpreadConstraints" (list (dict "maxSkew" 1 "topologyKey" "topology.kubernetes.io/zone" "whenUnsatisfiable" "ScheduleAnyway" "labelSelector" $selector "matchLabelKeys" (list "pod-template-hash"))) -}}
{{- end -}}
{{- toYaml $scheduling -}}
{{- end -}}

{{/* Where auth reads the tokens' private key (JWT_PRIVATE_KEY_FILE). */}}
{{- define "realtimeorder.jwt.privateKeyPath" -}}
/var/run/secrets/realtimeorder/token-signing/private.pem
{{- end -}}
