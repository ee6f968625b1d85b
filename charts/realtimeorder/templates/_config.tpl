{{/*
The configuration every Python service reads from the `<fullname>-env` ConfigMap (through
envFrom), and the runtime config.json of the web apps. Pods carry a checksum of these, so a
change rolls them.
*/}}

{{- define "realtimeorder.config.data" -}}
APP_ENV: {{ .Values.appEnv | quote }}
LOG_LEVEL: {{ .Values.logLevel | quote }}
DB_HOST: {{ include "realtimeorder.database.host" . | quote }}
DB_PORT: {{ include "realtimeorder.database.port" . | quote }}
DB_NAME: {{ include "realtimeorder.database.name" . | quote }}
DB_USER: {{ include "realtimeorder.database.user" . | quote }}
KAFKA_BROKER: {{ include "realtimeorder.kafka.bootstrap" . | quote }}
{{- /* The operator's EventTopics own the topics when the chart renders them; without them (no
operator) the services create what they use, as in the local stack. */}}
KAFKA_CREATE_TOPICS: {{ ternary "false" "true" .Values.eventTopics.enabled | quote }}
{{- /* The URL of each component with a urlVariable (the list in _component.tpl): the gateway
proxies to all of them, orders reads prices from inventory. */}}
{{- $urlVariables := dict }}
{{- range include "realtimeorder.components" . | fromYamlArray }}
{{- if .urlVariable }}
{{- $_ := set $urlVariables .key . }}
{{- end }}
{{- end }}
{{- range $key, $component := $urlVariables }}
{{- $values := index $.Values $key }}
{{- if $values.enabled }}
{{ $component.urlVariable }}: {{ printf "http://%s:%v" (include "realtimeorder.componentFullname" (dict "root" $ "name" $component.name)) $values.service.port | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "realtimeorder.webConfig.data" -}}
{{- $api := include "realtimeorder.publicUrl" (dict "root" . "host" .Values.hostnames.api) -}}
{{- dict "apiUrl" $api "socketUrl" $api "socketPath" "/socket.io/" | toPrettyJson -}}
{{- end -}}

{{/* Refuse value combinations that would install something that cannot work. */}}
{{- define "realtimeorder.validate" -}}
{{- if and (not .Values.kafka.enabled) (not .Values.externalKafka.brokers) -}}
{{- fail "kafka.enabled is false: set externalKafka.brokers" -}}
{{- end -}}
{{- if and (not .Values.kafka.enabled) .Values.externalKafka.sasl.mechanism (not (and .Values.externalKafka.sasl.username .Values.externalKafka.sasl.existingSecret)) -}}
{{- fail "externalKafka.sasl.mechanism needs externalKafka.sasl.username and externalKafka.sasl.existingSecret" -}}
{{- end -}}
{{- if and (not .Values.rabbitmq.enabled) (not (or .Values.externalRabbitmq.url .Values.externalRabbitmq.existingSecret)) -}}
{{- fail "rabbitmq.enabled is false: set externalRabbitmq.url or externalRabbitmq.existingSecret" -}}
{{- end -}}
{{- if and (not .Values.rabbitmq.enabled) .Values.operator.enabled (not .Values.externalRabbitmq.managementUrl) -}}
{{- fail "rabbitmq.enabled is false: the operator needs externalRabbitmq.managementUrl" -}}
{{- end -}}
{{- if and (include "realtimeorder.postgresql.cnpg" .) (not .Values.postgresql.persistence.enabled) -}}
{{- fail "postgresql.mode cloudnativepg keeps every instance's data on a volume: set postgresql.persistence.enabled" -}}
{{- end -}}
{{- if and (include "realtimeorder.postgresql.cnpg" .) .Values.postgresql.auth.existingSecret (ne .Values.postgresql.auth.existingSecretPasswordKey "password") -}}
{{- fail "postgresql.mode cloudnativepg takes a kubernetes.io/basic-auth Secret: postgresql.auth.existingSecretPasswordKey must be password" -}}
{{- end -}}
{{- if and (not .Values.postgresql.enabled) (not .Values.externalDatabase.host) -}}
{{- fail "postgresql.enabled is false: set externalDatabase.host" -}}
{{- end -}}
{{- if and (not .Values.postgresql.enabled) (not (or .Values.externalDatabase.password .Values.externalDatabase.existingSecret)) -}}
{{- fail "postgresql.enabled is false: set externalDatabase.password or externalDatabase.existingSecret" -}}
{{- end -}}
{{- if and (not .Values.redis.enabled) (not (or .Values.externalRedis.url .Values.externalRedis.existingSecret)) -}}
{{- fail "redis.enabled is false: set externalRedis.url or externalRedis.existingSecret" -}}
{{- end -}}
{{- if and (eq .Values.operator.kafkaMode "strimzi") (not .Values.kafka.enabled) -}}
{{- fail "operator.kafkaMode=strimzi needs kafka.enabled (the Strimzi cluster its KafkaTopics belong to)" -}}
{{- end -}}
{{- /* Strimzi's topic operator reconciles KafkaTopics only in its Kafka's namespace (the release's):
an EventTopic anywhere else would wait for a KafkaTopic that nothing ever makes Ready. */}}
{{- if and .Values.operator.enabled (eq (include "realtimeorder.operator.kafkaMode" .) "strimzi") -}}
{{- if .Values.operator.watchAllNamespaces -}}
{{- fail "operator.watchAllNamespaces with Kafka topics in Strimzi mode: Strimzi reconciles KafkaTopics only in the Kafka's namespace, so EventTopics elsewhere would never be Ready; set operator.kafkaMode=admin (the Kafka Admin API serves every namespace) or watch the release namespace only" -}}
{{- end -}}
{{- if ne (include "realtimeorder.operator.watchNamespaces" .) .Release.Namespace -}}
{{- fail (printf "operator.watchNamespaces other than %s with Kafka topics in Strimzi mode: Strimzi reconciles KafkaTopics only in the Kafka's namespace, so EventTopics elsewhere would never be Ready; set operator.kafkaMode=admin" .Release.Namespace) -}}
{{- end -}}
{{- end -}}
{{- if and (eq .Values.operator.rabbitmqMode "topology") (not .Values.rabbitmq.enabled) -}}
{{- fail "operator.rabbitmqMode=topology needs rabbitmq.enabled (the RabbitmqCluster its Queues reference)" -}}
{{- end -}}
{{- if and .Values.httpRoute.enabled (not .Values.httpRoute.parentRefs) -}}
{{- fail "httpRoute.enabled needs httpRoute.parentRefs (the Gateway to attach to)" -}}
{{- end -}}
{{- /* The channels' work queues, when the operator declares them: the notifications service
publishes to all three and checks that they and their retry queues exist (one set of retry
delays for every channel), each worker consumes its own, and both send dead letters to
notifications.dlq, where the service's archiver reads them. */}}
{{- if .Values.notificationQueues.enabled -}}
{{- range $component := include "realtimeorder.components" . | fromYamlArray -}}
{{- if eq $component.type "worker" -}}
{{- $_ := set $component "root" $ -}}
{{- $_ := include "realtimeorder.componentValues" $component -}}
{{- $queue := include "realtimeorder.notificationQueue" (dict "root" $ "name" $component.queue) | fromJson -}}
{{- if or $component.values.enabled $.Values.notifications.enabled -}}
{{- if not $queue.listed -}}
{{- fail (printf "notificationQueues.queues must list %s: the notifications service publishes to it and %s consumes it, and nothing else declares it" $component.queue $component.key) -}}
{{- end -}}
{{- if ne $queue.deadLetterQueue "notifications.dlq" -}}
{{- fail (printf "notificationQueues: %s must dead-letter to notifications.dlq, the queue the notifications service and its workers use" $component.queue) -}}
{{- end -}}
{{- end -}}
{{- if and $.Values.notifications.enabled (ne (toJson $queue.retryDelaysSeconds) (toJson $.Values.notificationQueues.retryDelaysSeconds)) -}}
{{- fail (printf "notificationQueues.queues %s: retryDelaysSeconds must be notificationQueues.retryDelaysSeconds (the notifications service checks one set of retry queues for every channel)" $component.queue) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
