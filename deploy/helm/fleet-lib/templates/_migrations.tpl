{{/*
Database migrations run before the new version's pods: a Job hooked on pre-install and
pre-upgrade runs `python -m <svc> migrate` (Alembic to head) with the release's image. A failed
migration fails the install/upgrade, so no pod of the new version starts on an old schema; the
running version keeps serving, which is why migrations must stay backward compatible
(expand, then contract in a later release).

Ordering on the first install: the release's normal resources (the ConfigMap, the
ServiceAccount, the `<svc>-env` ExternalSecret and its Secret, the NetworkPolicy) are created
only AFTER the pre-install hooks succeed, so the Job cannot use them. It gets its own copies as
hooks with a lower weight (created first): an ExternalSecret writing `<svc>-migrations` from the
same remote key, a ServiceAccount and a NetworkPolicy (DNS and Postgres only). Its non-secret
settings are inlined as env. Helm does not wait for External Secrets to sync: until the Secret
exists the Job's pod waits in CreateContainerConfigError and starts once it appears. All of them
are deleted when the hooks succeed (the Secret with its owner, the ExternalSecret) and
re-created by the next upgrade; a failed run is kept for inspection until then.
*/}}

{{- define "fleet-lib.migrationName" -}}
{{- printf "%s-migrations" (include "fleet-lib.name" .) -}}
{{- end -}}

{{- define "fleet-lib.migrationSecretName" -}}
{{- if .Values.secrets.externalSecret.enabled -}}
{{- include "fleet-lib.migrationName" . -}}
{{- else -}}
{{- include "fleet-lib.secretName" . -}}
{{- end -}}
{{- end -}}

{{- define "fleet-lib.hookAnnotations" -}}
helm.sh/hook: pre-install,pre-upgrade
helm.sh/hook-weight: {{ . | quote }}
helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
{{- end -}}

{{- define "fleet-lib.migrations" -}}
{{- if .Values.migrations.enabled -}}
{{- $name := include "fleet-lib.migrationName" . -}}
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ $name }}
  labels:
    {{- include "fleet-lib.migrationLabels" . | nindent 4 }}
  annotations:
    {{- include "fleet-lib.hookAnnotations" "-10" | nindent 4 }}
automountServiceAccountToken: false
{{- if .Values.secrets.externalSecret.enabled }}
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: {{ $name }}
  labels:
    {{- include "fleet-lib.migrationLabels" . | nindent 4 }}
  annotations:
    {{- include "fleet-lib.hookAnnotations" "-10" | nindent 4 }}
spec:
  {{- $remoteKey := include "fleet-lib.remoteKey" (dict "context" . "remoteKey" .Values.secrets.externalSecret.remoteKey) }}
  {{- include "fleet-lib.externalSecretSpec" (dict "context" . "target" $name "remoteKey" $remoteKey) | nindent 2 }}
{{- end }}
{{- if .Values.networkPolicy.enabled }}
{{- $egress := .Values.networkPolicy.egress.peers }}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ $name }}
  labels:
    {{- include "fleet-lib.migrationLabels" . | nindent 4 }}
  annotations:
    {{- include "fleet-lib.hookAnnotations" "-10" | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "fleet-lib.migrationSelectorLabels" . | nindent 6 }}
  policyTypes:
    - Ingress
    - Egress
  ingress: []
  egress:
    {{- range $peer := list "dns" "postgres" }}
    {{- $rule := get $egress $peer | default dict }}
    {{- if $rule.enabled }}
    - to:
        {{- toYaml $rule.peers | nindent 8 }}
      ports:
        {{- toYaml $rule.ports | nindent 8 }}
    {{- end }}
    {{- end }}
{{- end }}
---
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ $name }}
  labels:
    {{- include "fleet-lib.migrationLabels" . | nindent 4 }}
  annotations:
    {{- include "fleet-lib.hookAnnotations" "0" | nindent 4 }}
spec:
  backoffLimit: {{ .Values.migrations.backoffLimit }}
  activeDeadlineSeconds: {{ .Values.migrations.activeDeadlineSeconds }}
  template:
    metadata:
      labels:
        {{- include "fleet-lib.migrationSelectorLabels" . | nindent 8 }}
        {{- include "fleet-lib.ownerLabel" . | nindent 8 }}
        {{- include "fleet-lib.meshJobLabels" . | indent 8 }}
      annotations:
        {{- include "fleet-lib.ownerAnnotations" . | nindent 8 }}
        {{- include "fleet-lib.meshJobAnnotations" . | indent 8 }}
    spec:
      restartPolicy: Never
      serviceAccountName: {{ $name }}
      automountServiceAccountToken: false
      enableServiceLinks: false
      securityContext:
        {{- include "fleet-lib.podSecurityContext" . | nindent 8 }}
      {{- with include "fleet-lib.scheduling" . | trim }}
      {{- . | nindent 6 }}
      {{- end }}
      containers:
        - name: migrate
          image: {{ include "fleet-lib.image" . | quote }}
          imagePullPolicy: {{ .Values.image.pullPolicy }}
          command: ["python", "-m", {{ include "fleet-lib.name" . | quote }}]
          args: ["migrate"]
          env:
            {{- range $key, $value := include "fleet-lib.configData" . | fromYaml }}
            - name: {{ $key }}
              value: {{ $value | toString | quote }}
            {{- end }}
            - name: SERVICE_VERSION
              value: {{ include "fleet-lib.imageTag" . | quote }}
          envFrom:
            - secretRef:
                name: {{ include "fleet-lib.migrationSecretName" . }}
          resources:
            {{- toYaml .Values.resources | nindent 12 }}
          securityContext:
            {{- include "fleet-lib.containerSecurityContext" . | nindent 12 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
      volumes:
        {{- include "fleet-lib.tmpVolume" . | nindent 8 }}
{{- end -}}
{{- end -}}
