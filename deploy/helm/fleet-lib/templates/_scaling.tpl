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
The queue's depth drives the worker's replicas. KEDA reads the broker URL from the service's own
Secret (key `keda.amqpUrlKey`, AMQP_URL) through a TriggerAuthentication, so no credential is in
the values. The queue name is `<AMQP_QUEUE_PREFIX><svc>.events` (chassis topology).
*/}}
{{- define "fleet-lib.scaledObject" -}}
{{- $keda := .Values.keda -}}
{{- if $keda.enabled -}}
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
      metadata:
        protocol: amqp
        mode: QueueLength
        queueName: {{ $keda.queueName | quote }}
        value: {{ $keda.targetQueueLength | int | toString | quote }}
      authenticationRef:
        name: {{ include "fleet-lib.name" . }}-rabbitmq
{{- end -}}
{{- end -}}
