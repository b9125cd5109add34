{{/*
The public entry (the gateway only): one host over TLS, routing only `ingress.paths` (the public
API; probes and metrics stay inside the cluster). With `ingress.certManager.clusterIssuer`
set, cert-manager issues the certificate into `ingress.tls.secretName`; otherwise that Secret must
exist.
*/}}

{{- define "fleet-lib.ingress" -}}
{{- $ingress := .Values.ingress -}}
{{- if $ingress.enabled -}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {{ include "fleet-lib.name" . }}
  labels:
    {{- include "fleet-lib.labels" . | nindent 4 }}
  {{- if or $ingress.certManager.clusterIssuer $ingress.annotations }}
  annotations:
    {{- with $ingress.certManager.clusterIssuer }}
    cert-manager.io/cluster-issuer: {{ . | quote }}
    {{- end }}
    {{- with $ingress.annotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- end }}
spec:
  ingressClassName: {{ $ingress.className }}
  {{- if $ingress.tls.enabled }}
  tls:
    - hosts:
        - {{ $ingress.host | quote }}
      secretName: {{ $ingress.tls.secretName }}
  {{- end }}
  rules:
    - host: {{ $ingress.host | quote }}
      http:
        paths:
          {{- range $ingress.paths }}
          - path: {{ . | quote }}
            pathType: Prefix
            backend:
              service:
                name: {{ include "fleet-lib.name" $ }}
                port:
                  name: http
          {{- end }}
{{- end -}}
{{- end -}}
