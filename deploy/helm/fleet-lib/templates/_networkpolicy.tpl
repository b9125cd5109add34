{{/*
Default deny, both ways, for the service's pods; then only what the service needs.

Ingress, always on the http port only:
- `ingress.fromServices`: the Fleet services (pods of this namespace) that call this one;
- `ingress.peers`: named peers elsewhere (Prometheus in the monitoring namespace, the ingress
  controller for the gateway), each `{enabled, peers: [NetworkPolicyPeer]}`.
Egress:
- `egress.toServices`: Fleet services this one calls, name -> port (their pods' port);
- `egress.peers`: named rules `{enabled, peers, ports}` (DNS, Postgres, RabbitMQ, Redis, OTLP,
  SMTP, the internet), so a values file switches or re-targets one without repeating the rest;
- with a mesh on, its control plane (`mesh.controlPlane.<provider>`, see _mesh.tpl). Meshed
  traffic between the pods needs no rule of its own: a sidecar connects to the destination pod's
  own port, and the redirection to the proxy happens inside the destination pod, after the policy.
*/}}

{{- define "fleet-lib.networkPolicyIngressRules" -}}
{{- $policy := .Values.networkPolicy -}}
{{- with $policy.ingress.fromServices }}
- from:
    - podSelector:
        matchLabels:
          app.kubernetes.io/component: server
          app.kubernetes.io/part-of: fleet
        matchExpressions:
          - key: app.kubernetes.io/name
            operator: In
            values:
              {{- toYaml . | nindent 14 }}
  ports:
    - port: http
      protocol: TCP
{{- end }}
{{- range $name, $rule := $policy.ingress.peers }}
{{- if $rule.enabled }}
# {{ $name }}
- from:
    {{- toYaml $rule.peers | nindent 4 }}
  ports:
    - port: http
      protocol: TCP
{{- end }}
{{- end }}
{{- end -}}

{{- define "fleet-lib.networkPolicyEgressRules" -}}
{{- $policy := .Values.networkPolicy -}}
{{- range $service, $port := $policy.egress.toServices }}
# {{ $service }}
- to:
    - podSelector:
        matchLabels:
          app.kubernetes.io/name: {{ $service }}
          app.kubernetes.io/component: server
          app.kubernetes.io/part-of: fleet
  ports:
    - port: {{ $port | int }}
      protocol: TCP
{{- end }}
{{- range $name, $rule := $policy.egress.peers }}
{{- if $rule.enabled }}
# {{ $name }}
- to:
    {{- toYaml $rule.peers | nindent 4 }}
  ports:
    {{- toYaml $rule.ports | nindent 4 }}
{{- end }}
{{- end }}
{{- include "fleet-lib.meshEgressRules" . }}
{{- end -}}

{{- define "fleet-lib.networkPolicy" -}}
{{- if .Values.networkPolicy.enabled -}}
{{- $ingress := include "fleet-lib.networkPolicyIngressRules" . | trim -}}
{{- $egress := include "fleet-lib.networkPolicyEgressRules" . | trim -}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "fleet-lib.name" . }}
  labels:
    {{- include "fleet-lib.labels" . | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "fleet-lib.selectorLabels" . | nindent 6 }}
  policyTypes:
    - Ingress
    - Egress
  {{- if $ingress }}
  ingress:
    {{- $ingress | nindent 4 }}
  {{- else }}
  ingress: []
  {{- end }}
  {{- if $egress }}
  egress:
    {{- $egress | nindent 4 }}
  {{- else }}
  egress: []
  {{- end }}
{{- end -}}
{{- end -}}
