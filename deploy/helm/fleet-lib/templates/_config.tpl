{{/*
Non-secret configuration: the `config` map plus what the chart itself knows (environment, port,
the worker's bucket from `objectStorage`, empty URLs meaning AWS's own endpoint; the worker's
command prefetch, export and reconciliation settings from `commands`, `exports` and
`reconciliation`).
The values schema refuses secret-looking keys in `config`; secrets come from the service's Secret.
*/}}

{{- define "fleet-lib.configData" -}}
FLEET_ENV: {{ include "fleet-lib.fleetEnv" . | quote }}
HOST: "0.0.0.0"
PORT: {{ .Values.service.port | int | toString | quote }}
{{- with .Values.objectStorage }}
S3_ENDPOINT_URL: {{ .endpointUrl | quote }}
S3_PRESIGN_ENDPOINT_URL: {{ .presignEndpointUrl | quote }}
S3_REGION: {{ .region | quote }}
S3_BUCKET: {{ .bucket | quote }}
{{- end }}
{{- with .Values.commands }}
COMMAND_PREFETCH: {{ .prefetch | int | toString | quote }}
{{- end }}
{{- with .Values.exports }}
EXPORT_DEADLINE_SECONDS: {{ .deadlineSeconds | int | toString | quote }}
EXPORT_DEADLINE_SCAN_SECONDS: {{ .deadlineScanSeconds | int | toString | quote }}
{{- end }}
{{- with .Values.reconciliation }}
RECONCILIATION_EVERY_SECONDS: {{ .everySeconds | int | toString | quote }}
RECONCILIATION_CHECK_SECONDS: {{ .checkSeconds | int | toString | quote }}
RECONCILIATION_SETTLE_SECONDS: {{ .settleSeconds | int | toString | quote }}
{{- end }}
{{- range $key, $value := .Values.config }}
{{ $key }}: {{ $value | toString | quote }}
{{- end }}
{{- end -}}

{{- define "fleet-lib.configMap" -}}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "fleet-lib.name" . }}
  labels:
    {{- include "fleet-lib.labels" . | nindent 4 }}
data:
  {{- include "fleet-lib.configData" . | nindent 2 }}
{{- end -}}

{{/*
terminationGracePeriodSeconds, refused when it cannot cover a graceful stop: the preStop sleep
(the endpoints controller and the proxies stop sending new requests meanwhile), then up to
`drainStages` times SHUTDOWN_GRACE_SECONDS (uvicorn finishes in-flight requests, then the
lifespan stops the consumer and the background loops, each bounded by the same grace). Past the
period the kubelet sends SIGKILL and in-flight work is cut.
*/}}
{{- define "fleet-lib.terminationGracePeriodSeconds" -}}
{{- $preStop := int .Values.gracefulShutdown.preStopSleepSeconds -}}
{{- $stages := int .Values.gracefulShutdown.drainStages -}}
{{- $grace := get .Values.config "SHUTDOWN_GRACE_SECONDS" | default "10" | float64 | ceil | int -}}
{{- $needed := include "fleet-lib.stopSeconds" . | int -}}
{{- $period := int .Values.terminationGracePeriodSeconds -}}
{{- if le $period $needed -}}
{{- fail (printf "%s: terminationGracePeriodSeconds=%d is too short: it must exceed the preStop sleep (%ds) plus %d drain stage(s) of SHUTDOWN_GRACE_SECONDS (%ds each), i.e. be more than %ds" (include "fleet-lib.name" .) $period $preStop $stages $grace $needed) -}}
{{- end -}}
{{- $period -}}
{{- end -}}

{{/* How long a pod takes to stop: the preStop sleep, then every drain stage (a mesh's sidecar
stays up that long, see _mesh.tpl). */}}
{{- define "fleet-lib.stopSeconds" -}}
{{- $preStop := int .Values.gracefulShutdown.preStopSleepSeconds -}}
{{- $stages := int .Values.gracefulShutdown.drainStages -}}
{{- $grace := get .Values.config "SHUTDOWN_GRACE_SECONDS" | default "10" | float64 | ceil | int -}}
{{- add $preStop (mul $stages $grace) -}}
{{- end -}}
