{{/*
The service-mesh alternative to service tokens (`mesh.enabled`, off by default: nothing here is
rendered and no pod is annotated). With a mesh (`mesh.provider`: istio or linkerd) the sidecars
speak mTLS with each other, and each service admits, on its `http` port, only:
- the Fleet services that call it: `networkPolicy.ingress.fromServices` (the one list of callers,
  which the NetworkPolicy uses too), by their service accounts in this namespace;
- the peers of `mesh.peers` (Prometheus, the gateway's ingress controller), by namespace and
  service account; they must be in the mesh themselves to present that identity.

Istio: pod label `sidecar.istio.io/inject`, a PeerAuthentication (STRICT) and an ALLOW
AuthorizationPolicy per service. Kubelet probes need no rule: Istio rewrites HTTP probes to its
agent (port 15020), which calls the app over localhost. Prometheus scrapes with the certificates
its own sidecar writes (`mesh.prometheusCertsDir`, see the ServiceMonitor) and may GET /metrics
only.
Linkerd: annotation `linkerd.io/inject`, a Server on `http` and an AuthorizationPolicy requiring a
MeshTLSAuthentication of the callers' service accounts. Linkerd authorizes the liveness and
readiness probe paths of a Server that has no HTTPRoute by itself.
The migration Job stays out of the mesh (a sidecar would keep the Job from completing; it talks
to Postgres only).
*/}}

{{- define "fleet-lib.meshProvider" -}}
{{- if .Values.mesh.enabled -}}{{ .Values.mesh.provider }}{{- end -}}
{{- end -}}

{{- define "fleet-lib.meshPodLabels" -}}
{{- if eq (include "fleet-lib.meshProvider" .) "istio" }}
sidecar.istio.io/inject: "true"
{{- end }}
{{- end -}}

{{/*
The app starts once its sidecar is ready (its first calls are to auth), and the sidecar stays up
while the app stops (preStop sleep and drain stages), so the drain can still call out.
*/}}
{{- define "fleet-lib.meshPodAnnotations" -}}
{{- $provider := include "fleet-lib.meshProvider" . -}}
{{- $drain := include "fleet-lib.stopSeconds" . -}}
{{- if eq $provider "istio" }}
sidecar.istio.io/rewriteAppHTTPProbers: "true"
proxy.istio.io/config: {{ dict "holdApplicationUntilProxyStarts" true "terminationDrainDuration" (printf "%ss" $drain) | toJson | quote }}
{{- else if eq $provider "linkerd" }}
linkerd.io/inject: enabled
config.linkerd.io/proxy-await: enabled
config.alpha.linkerd.io/proxy-wait-before-exit-seconds: {{ $drain | quote }}
{{- end }}
{{- end -}}

{{/* The migration Job's pod: never injected, even in a namespace labelled for injection. */}}
{{- define "fleet-lib.meshJobLabels" -}}
{{- if eq (include "fleet-lib.meshProvider" .) "istio" }}
sidecar.istio.io/inject: "false"
{{- end }}
{{- end -}}

{{- define "fleet-lib.meshJobAnnotations" -}}
{{- if eq (include "fleet-lib.meshProvider" .) "linkerd" }}
linkerd.io/inject: disabled
{{- end }}
{{- end -}}

{{/* NetworkPolicy egress of a meshed pod to the mesh's control plane (certificates, config). */}}
{{- define "fleet-lib.meshEgressRules" -}}
{{- $provider := include "fleet-lib.meshProvider" . -}}
{{- if $provider }}
{{- $rule := get .Values.mesh.controlPlane $provider }}
# {{ $provider }} control plane
- to:
    {{- toYaml $rule.peers | nindent 4 }}
  ports:
    {{- toYaml $rule.ports | nindent 4 }}
{{- end }}
{{- end -}}

{{- define "fleet-lib.meshIstio" -}}
{{- $mesh := .Values.mesh -}}
{{- $port := .Values.service.port | int | toString -}}
{{- $callers := list -}}
{{- range .Values.networkPolicy.ingress.fromServices -}}
{{- $callers = append $callers (printf "%s/ns/%s/sa/%s" $mesh.trustDomain $.Release.Namespace .) -}}
{{- end -}}
{{- $peers := list -}}
{{- $prometheus := list -}}
{{- range $name, $peer := $mesh.peers -}}
{{- if $peer.enabled -}}
{{- $principal := printf "%s/ns/%s/sa/%s" $mesh.trustDomain $peer.namespace $peer.serviceAccount -}}
{{- if eq $name "prometheus" -}}
{{- $prometheus = append $prometheus $principal -}}
{{- else -}}
{{- $peers = append $peers $principal -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $callers = concat $callers $peers -}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: {{ include "fleet-lib.name" . }}
  labels:
    {{- include "fleet-lib.labels" . | nindent 4 }}
spec:
  selector:
    matchLabels:
      {{- include "fleet-lib.selectorLabels" . | nindent 6 }}
  mtls:
    mode: STRICT
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: {{ include "fleet-lib.name" . }}
  labels:
    {{- include "fleet-lib.labels" . | nindent 4 }}
spec:
  selector:
    matchLabels:
      {{- include "fleet-lib.selectorLabels" . | nindent 6 }}
  # ALLOW: a request matching no rule is denied (no rule at all: every request is).
  action: ALLOW
  {{- if or $callers $prometheus }}
  rules:
    {{- with $callers }}
    - from:
        - source:
            principals:
              {{- toYaml . | nindent 14 }}
      to:
        - operation:
            ports: [{{ $port | quote }}]
    {{- end }}
    {{- with $prometheus }}
    # Prometheus reads the metrics, nothing else.
    - from:
        - source:
            principals:
              {{- toYaml . | nindent 14 }}
      to:
        - operation:
            ports: [{{ $port | quote }}]
            methods: ["GET"]
            paths: ["/metrics"]
    {{- end }}
  {{- end }}
{{- end -}}

{{- define "fleet-lib.meshLinkerd" -}}
{{- $name := include "fleet-lib.name" . -}}
{{- $identities := list -}}
{{- range .Values.networkPolicy.ingress.fromServices -}}
{{- $identities = append $identities (dict "kind" "ServiceAccount" "name" .) -}}
{{- end -}}
{{- range $peerName, $peer := .Values.mesh.peers -}}
{{- if $peer.enabled -}}
{{- $identities = append $identities (dict "kind" "ServiceAccount" "name" $peer.serviceAccount "namespace" $peer.namespace) -}}
{{- end -}}
{{- end -}}
---
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata:
  name: {{ $name }}
  labels:
    {{- include "fleet-lib.labels" . | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "fleet-lib.selectorLabels" . | nindent 6 }}
  port: http
  proxyProtocol: HTTP/1
  # Traffic no AuthorizationPolicy admits is refused.
  accessPolicy: deny
{{- if $identities }}
---
apiVersion: policy.linkerd.io/v1alpha1
kind: MeshTLSAuthentication
metadata:
  name: {{ $name }}-callers
  labels:
    {{- include "fleet-lib.labels" . | nindent 4 }}
spec:
  identityRefs:
    {{- toYaml $identities | nindent 4 }}
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata:
  name: {{ $name }}-callers
  labels:
    {{- include "fleet-lib.labels" . | nindent 4 }}
spec:
  targetRef:
    group: policy.linkerd.io
    kind: Server
    name: {{ $name }}
  requiredAuthenticationRefs:
    - group: policy.linkerd.io
      kind: MeshTLSAuthentication
      name: {{ $name }}-callers
{{- end }}
{{- end -}}

{{- define "fleet-lib.mesh" -}}
{{- $provider := include "fleet-lib.meshProvider" . -}}
{{- if eq $provider "istio" -}}
{{ include "fleet-lib.meshIstio" . }}
{{- else if eq $provider "linkerd" -}}
{{ include "fleet-lib.meshLinkerd" . }}
{{- end -}}
{{- end -}}
