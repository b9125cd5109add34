{{/*
Who owns the replica count: an HPA on CPU (and memory) for request-driven services, or a KEDA
ScaledObject on the depth of the service's RabbitMQ queue for the worker. Both target the
Rollout when the canary is on (Argo Rollouts supports the scale subresource).
*/}}

{{- define "fleet-lib.horizontalPodAutoscaler" -}}
{{- $autoscaling := .Values.autoscaling -}}
{{- if $autoscaling.enabled -}}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ include "fleet-lib.name" . }}
  labels:
    {{- include "fleet-lib.labels" . | nindent 4 }}
spec:
  scaleTargetRef:
    {{- include "fleet-lib.workloadRef" . | nindent 4 }}
  minReplicas: {{ $autoscaling.minReplicas }}
  maxReplicas: {{ $autoscaling.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ $autoscaling.targetCPUUtilizationPercentage }}
    {{- with $autoscaling.targetMemoryUtilizationPercentage }}
    - type: Resource
      resource:
        name: memory
        target:
          type: Utilization
          averageUtilization: {{ . }}
    {{- end }}
  behavior:
    scaleDown:
      # Ride out short dips instead of flapping.
      stabilizationWindowSeconds: {{ $autoscaling.scaleDownStabilizationSeconds }}
      policies:
        - type: Percent
          value: 50
          periodSeconds: 60
{{- end -}}
{{- end -}}

{{/*
The queues' depth drives the worker's replicas: its events (`<svc>.events`) and, with
`keda.commands`, its commands (`<svc>.commands`); KEDA's HPA takes the most replicas any trigger
asks for. KEDA reads the broker URL from the service's own Secret (key `keda.amqpUrlKey`,
AMQP_URL) through a TriggerAuthentication, so no credential is in the values. Queue names carry
the service's AMQP_QUEUE_PREFIX (chassis topology): rendering fails when one does not. A
ScaledObject creates an HPA of its own, so a chart with an `autoscaling` HPA on cannot have one.
*/}}
{{- define "fleet-lib.scaledObject" -}}
{{- $keda := .Values.keda -}}
{{- if $keda.enabled -}}
{{- with .Values.autoscaling -}}
{{- if .enabled -}}
{{- fail (printf "%s: keda.enabled and autoscaling.enabled: a ScaledObject and an HPA would both own the replica count; turn one off" (include "fleet-lib.name" $)) -}}
{{- end -}}
{{- end -}}
{{- $prefix := get .Values.config "AMQP_QUEUE_PREFIX" | default "" -}}
{{- $queues := list $keda.queueName -}}
{{- $commands := $keda.commands | default dict -}}
{{- if $commands.enabled -}}
{{- $queues = append $queues $commands.queueName -}}
{{- end -}}
{{- range $queues -}}
{{- if not (hasPrefix $prefix .) -}}
{{- fail (printf "keda: queue %q lacks config.AMQP_QUEUE_PREFIX %q: KEDA would watch a queue no replica consumes" . $prefix) -}}
{{- end -}}
{{- end -}}
---
apiVersion: keda.sh/v1alpha1
kind: TriggerAuthentication
metadata:
  name: {{ include "fleet-lib.name" . }}-rabbitmq
  labels:
    {{- include "fleet-lib.labels" . | nindent 4 }}
spec:
  secretTargetRef:
    - parameter: host
      name: {{ include "fleet-lib.secretName" . }}
      key: {{ $keda.amqpUrlKey }}
---
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: {{ include "fleet-lib.name" . }}
  labels:
    {{- include "fleet-lib.labels" . | nindent 4 }}
spec:
  scaleTargetRef:
    {{- include "fleet-lib.workloadRef" . | nindent 4 }}
  minReplicaCount: {{ $keda.minReplicaCount }}
  maxReplicaCount: {{ $keda.maxReplicaCount }}
  pollingInterval: {{ $keda.pollingInterval }}
  cooldownPeriod: {{ $keda.cooldownPeriod }}
  triggers:
    - type: rabbitmq
      name: events
      metadata:
        protocol: amqp
        mode: QueueLength
        queueName: {{ $keda.queueName | quote }}
        value: {{ $keda.targetQueueLength | int | toString | quote }}
      authenticationRef:
        name: {{ include "fleet-lib.name" . }}-rabbitmq
    {{- if $commands.enabled }}
    - type: rabbitmq
      name: commands
      metadata:
        protocol: amqp
        mode: QueueLength
        queueName: {{ $commands.queueName | quote }}
        value: {{ $commands.targetQueueLength | int | toString | quote }}
      authenticationRef:
        name: {{ include "fleet-lib.name" . }}-rabbitmq
    {{- end }}
{{- end -}}
{{- end -}}
