{{/* The Service (API, probes and /metrics on one port named http) and the ServiceAccount. */}}

{{- define "fleet-lib.service" -}}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ include "fleet-lib.name" . }}
  labels:
    {{- include "fleet-lib.labels" . | nindent 4 }}
spec:
  type: ClusterIP
  selector:
    {{- include "fleet-lib.selectorLabels" . | nindent 4 }}
  ports:
    - name: http
      port: {{ .Values.service.port | int }}
      targetPort: http
      protocol: TCP
{{- end -}}

{{/* No Fleet service talks to the Kubernetes API: no token is mounted. */}}
{{- define "fleet-lib.serviceAccount" -}}
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "fleet-lib.name" . }}
  labels:
    {{- include "fleet-lib.labels" . | nindent 4 }}
automountServiceAccountToken: false
{{- end -}}

{{/*
At most `maxUnavailable` (or at least `minAvailable`, when set) pods of the service during
voluntary disruptions (node drains, cluster upgrades). Pods that are not ready yet may always be
evicted, so a crash-looping pod never blocks a drain.
*/}}
{{- define "fleet-lib.podDisruptionBudget" -}}
{{- $pdb := .Values.podDisruptionBudget -}}
{{- if $pdb.enabled -}}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "fleet-lib.name" . }}
  labels:
    {{- include "fleet-lib.labels" . | nindent 4 }}
spec:
  {{- if not (kindIs "invalid" $pdb.minAvailable) }}
  minAvailable: {{ $pdb.minAvailable }}
  {{- else if not (kindIs "invalid" $pdb.maxUnavailable) }}
  maxUnavailable: {{ $pdb.maxUnavailable }}
  {{- else }}
  {{- fail (printf "%s: podDisruptionBudget needs minAvailable or maxUnavailable" (include "fleet-lib.name" .)) }}
  {{- end }}
  unhealthyPodEvictionPolicy: AlwaysAllow
  selector:
    matchLabels:
      {{- include "fleet-lib.selectorLabels" . | nindent 6 }}
{{- end -}}
{{- end -}}
