{{/*
Secrets never pass through the values: the External Secrets Operator copies them from the secret
store into Kubernetes Secrets. Every property of the service's remote key becomes an environment
variable (DATABASE_URL, AMQP_URL, ...); each `secretMounts` entry (auth's JWT signing keys) gets a
Secret of its own, mounted as files.
*/}}

{{/*
The remote key of a secret: as configured, else `fleet/<global.environment>/<svc>[/<name>]`, so
staging reads staging's entries and never production's.
*/}}
{{- define "fleet-lib.remoteKey" -}}
{{- $context := .context -}}
{{- $environment := ($context.Values.global | default dict).environment | default "production" -}}
{{- $default := printf "fleet/%s/%s" $environment (include "fleet-lib.name" $context) -}}
{{- if .name -}}{{- $default = printf "%s/%s" $default .name -}}{{- end -}}
{{- .remoteKey | default $default -}}
{{- end -}}

{{- define "fleet-lib.externalSecretSpec" -}}
{{- $external := .context.Values.secrets.externalSecret -}}
refreshInterval: {{ $external.refreshInterval }}
secretStoreRef:
  name: {{ $external.storeRef.name }}
  kind: {{ $external.storeRef.kind }}
target:
  name: {{ .target }}
  creationPolicy: Owner
  deletionPolicy: Retain
dataFrom:
  - extract:
      key: {{ .remoteKey }}
{{- end -}}

{{- define "fleet-lib.externalSecrets" -}}
{{- if .Values.secrets.externalSecret.enabled -}}
{{- $name := include "fleet-lib.name" . }}
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: {{ $name }}-env
  labels:
    {{- include "fleet-lib.labels" . | nindent 4 }}
spec:
  {{- $remoteKey := include "fleet-lib.remoteKey" (dict "context" . "remoteKey" .Values.secrets.externalSecret.remoteKey) }}
  {{- include "fleet-lib.externalSecretSpec" (dict "context" . "target" (printf "%s-env" $name) "remoteKey" $remoteKey) | nindent 2 }}
{{- range .Values.secretMounts }}
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: {{ .secretName }}
  labels:
    {{- include "fleet-lib.labels" $ | nindent 4 }}
spec:
  {{- $remoteKey := include "fleet-lib.remoteKey" (dict "context" $ "remoteKey" .remoteKey "name" .name) }}
  {{- include "fleet-lib.externalSecretSpec" (dict "context" $ "target" .secretName "remoteKey" $remoteKey) | nindent 2 }}
{{- end }}
{{- end -}}
{{- end -}}
