{{/*
Prometheus scrapes /metrics through the Service. `jobLabel` names the Service label whose value
becomes the `job` label: app.kubernetes.io/name, so job="<svc>" as the dashboards and SLO rules
expect. `podTargetLabels` copies the Argo Rollouts revision hash onto the series
(`rollouts_pod_template_hash`), which is how the canary analysis tells canary pods apart.
*/}}

{{- define "fleet-lib.serviceMonitor" -}}
{{- $monitor := .Values.serviceMonitor -}}
{{- if $monitor.enabled -}}
---
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ include "fleet-lib.name" . }}
  labels:
    {{- include "fleet-lib.labels" . | nindent 4 }}
    {{- with $monitor.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  jobLabel: app.kubernetes.io/name
  podTargetLabels:
    - rollouts-pod-template-hash
  selector:
    matchLabels:
      {{- include "fleet-lib.selectorLabels" . | nindent 6 }}
  namespaceSelector:
    matchNames:
      - {{ .Release.Namespace }}
  endpoints:
    - port: http
      path: /metrics
      interval: {{ $monitor.interval }}
      scrapeTimeout: {{ $monitor.scrapeTimeout }}
      {{- if eq (include "fleet-lib.meshProvider" .) "istio" }}
      # STRICT mTLS: Prometheus scrapes with the certificates its own Istio sidecar writes
      # (Istio's Prometheus integration); Istio's names are not the pod's address, so the
      # server name is not checked, the mesh's CA is.
      scheme: https
      tlsConfig:
        caFile: {{ printf "%s/root-cert.pem" .Values.mesh.prometheusCertsDir }}
        certFile: {{ printf "%s/cert-chain.pem" .Values.mesh.prometheusCertsDir }}
        keyFile: {{ printf "%s/key.pem" .Values.mesh.prometheusCertsDir }}
        insecureSkipVerify: true
      {{- end }}
{{- end -}}
{{- end -}}
