{{/*
The workload: an Argo Rollouts `Rollout` doing a canary release when `canary.enabled`, else a
plain Deployment. Both run the same pod template; without `canary` nothing needs Argo Rollouts.
*/}}

{{- define "fleet-lib.workload" -}}
{{- if .Values.canary.enabled -}}
{{ include "fleet-lib.rollout" . }}
{{- else -}}
{{ include "fleet-lib.deployment" . }}
{{- end -}}
{{- end -}}

{{- define "fleet-lib.deployment" -}}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "fleet-lib.name" . }}
  labels:
    {{- include "fleet-lib.labels" . | nindent 4 }}
  annotations:
    {{- include "fleet-lib.ownerAnnotations" . | nindent 4 }}
spec:
  {{- if not (include "fleet-lib.autoscaled" .) }}
  replicas: {{ .Values.replicaCount }}
  {{- end }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- include "fleet-lib.selectorLabels" . | nindent 6 }}
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 25%
      maxUnavailable: 0
  template:
    {{- include "fleet-lib.podTemplate" . | nindent 4 }}
{{- end -}}

{{/*
Canary without a traffic router: the weight is the share of canary pods behind the one Service,
so no canaryService/stableService (setting stableService would pin the Service to the stable pods
and leave the canary without traffic to judge). The background analysis starts after the first
step and aborts the rollout, scaling the canary away, as soon as a metric fails.
*/}}
{{- define "fleet-lib.rollout" -}}
---
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: {{ include "fleet-lib.name" . }}
  labels:
    {{- include "fleet-lib.labels" . | nindent 4 }}
  annotations:
    {{- include "fleet-lib.ownerAnnotations" . | nindent 4 }}
spec:
  {{- if not (include "fleet-lib.autoscaled" .) }}
  replicas: {{ .Values.replicaCount }}
  {{- end }}
  revisionHistoryLimit: 5
  # Rolling back to one of the last three revisions (`helm rollback`, `kubectl argo rollouts undo`)
  # skips the canary steps: that code already ran at full traffic, and an incident is no time to
  # wait ~12 minutes of pauses for it.
  rollbackWindow:
    revisions: 3
  selector:
    matchLabels:
      {{- include "fleet-lib.selectorLabels" . | nindent 6 }}
  template:
    {{- include "fleet-lib.podTemplate" . | nindent 4 }}
  strategy:
    canary:
      maxSurge: 25%
      maxUnavailable: 0
      {{- if .Values.canary.analysis.enabled }}
      analysis:
        templates:
          - templateName: {{ include "fleet-lib.name" . }}-canary
        startingStep: {{ .Values.canary.analysis.startingStep }}
        args:
          - name: canary-hash
            valueFrom:
              podTemplateHashValue: Latest
      {{- end }}
      steps:
        {{- toYaml .Values.canary.steps | nindent 8 }}
{{- end -}}
