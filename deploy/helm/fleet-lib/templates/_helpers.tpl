{{/*
Names, labels and the values every other template derives from.

Resource names are the service's name (the chart's name), never the release's: `orders` is the
Service, the Deployment or Rollout, the ConfigMap... whether the chart is installed on its own or
through the `fleet` umbrella. Dashboards, SLO rules and runbooks rely on it.
*/}}

{{- define "fleet-lib.name" -}}
{{- .Chart.Name -}}
{{- end -}}

{{/* Pod labels the Service, PDB, NetworkPolicy and scalers select on (never change them). */}}
{{- define "fleet-lib.selectorLabels" -}}
app.kubernetes.io/name: {{ include "fleet-lib.name" . }}
app.kubernetes.io/component: server
app.kubernetes.io/part-of: fleet
{{- end -}}

{{/* The migration Job's pods: same service, another component, so no Service routes to them. */}}
{{- define "fleet-lib.migrationSelectorLabels" -}}
app.kubernetes.io/name: {{ include "fleet-lib.name" . }}
app.kubernetes.io/component: migrations
app.kubernetes.io/part-of: fleet
{{- end -}}

{{- define "fleet-lib.commonLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ include "fleet-lib.imageTag" . | trunc 63 | quote }}
{{ include "fleet-lib.ownerLabel" . }}
{{- end -}}

{{/*
Who answers for the service: `ownership.team` (its `@fleet/<team>` in .github/CODEOWNERS) on
every object and pod, and on the workloads and pods the on-call runbook to open first. Never a
selector: a new owner must not orphan the running pods.
*/}}
{{- define "fleet-lib.ownerLabel" -}}
fleet.example.com/team: {{ .Values.ownership.team | quote }}
{{- end -}}

{{- define "fleet-lib.ownerAnnotations" -}}
fleet.example.com/runbook: {{ .Values.ownership.runbook | quote }}
{{- end -}}

{{- define "fleet-lib.labels" -}}
{{ include "fleet-lib.selectorLabels" . }}
{{ include "fleet-lib.commonLabels" . }}
{{- end -}}

{{- define "fleet-lib.migrationLabels" -}}
{{ include "fleet-lib.migrationSelectorLabels" . }}
{{ include "fleet-lib.commonLabels" . }}
{{- end -}}

{{/* `global.imageTag` (CI sets it to the commit) wins over `image.tag`, then the appVersion. */}}
{{- define "fleet-lib.imageTag" -}}
{{- $global := .Values.global | default dict -}}
{{- $global.imageTag | default .Values.image.tag | default .Chart.AppVersion | toString -}}
{{- end -}}

{{/* `[<global.imageRegistry>/]<image.repository>:<tag>`, repository defaulting to fleet-<svc>. */}}
{{- define "fleet-lib.image" -}}
{{- $global := .Values.global | default dict -}}
{{- $repository := .Values.image.repository | default (printf "fleet-%s" (include "fleet-lib.name" .)) -}}
{{- $registry := $global.imageRegistry | default "" | trimSuffix "/" -}}
{{- if $registry -}}
{{- printf "%s/%s:%s" $registry $repository (include "fleet-lib.imageTag" .) -}}
{{- else -}}
{{- printf "%s:%s" $repository (include "fleet-lib.imageTag" .) -}}
{{- end -}}
{{- end -}}

{{/* FLEET_ENV: the services know local|test|staging|production; a `dev` cluster runs as local. */}}
{{- define "fleet-lib.fleetEnv" -}}
{{- $environment := (.Values.global | default dict).environment | default "production" -}}
{{- if eq $environment "dev" -}}local{{- else -}}{{ $environment }}{{- end -}}
{{- end -}}

{{/*
The Secret the service reads its secret environment from (DATABASE_URL, AMQP_URL, ...): the one
its ExternalSecret writes, or an existing one (local development creates `<svc>-env`).
*/}}
{{- define "fleet-lib.secretName" -}}
{{- if .Values.secrets.externalSecret.enabled -}}
{{- printf "%s-env" (include "fleet-lib.name" .) -}}
{{- else -}}
{{- .Values.secrets.existingSecret | default (printf "%s-env" (include "fleet-lib.name" .)) -}}
{{- end -}}
{{- end -}}

{{/* "true" when an HPA or a KEDA ScaledObject owns the replica count. */}}
{{- define "fleet-lib.autoscaled" -}}
{{- if or (.Values.autoscaling | default dict).enabled (.Values.keda | default dict).enabled -}}true{{- end -}}
{{- end -}}

{{/* The workload's kind and API version, for the scalers' scaleTargetRef. */}}
{{- define "fleet-lib.workloadRef" -}}
{{- if .Values.canary.enabled -}}
apiVersion: argoproj.io/v1alpha1
kind: Rollout
{{- else -}}
apiVersion: apps/v1
kind: Deployment
{{- end }}
name: {{ include "fleet-lib.name" . }}
{{- end -}}
