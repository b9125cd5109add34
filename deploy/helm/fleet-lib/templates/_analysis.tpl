{{/*
How a canary is judged: its own requests only (the ServiceMonitor copies the pods'
`rollouts-pod-template-hash` label onto the series as `rollouts_pod_template_hash`; the Rollout
passes the canary's hash in), probes and /metrics excluded, like the SLO rules.

- success rate: share of non-5xx responses; p95 latency: from the request duration histogram.
- Fewer than `minRequests` requests in the window give an empty result (the `and` filter): too
  little traffic to judge, so the metric passes and the probes alone decide. A canary that
  does get traffic and fails a measurement more than `failureLimit` times fails the analysis,
  which aborts the rollout: the canary is scaled down and the stable pods carry everything.
- `{{args.canary-hash}}` is Argo Rollouts' placeholder, escaped from Helm.
*/}}

{{- define "fleet-lib.analysisSelector" -}}
{{- $hash := "{{args.canary-hash}}" -}}
job="{{ include "fleet-lib.name" . }}",namespace="{{ .Release.Namespace }}",rollouts_pod_template_hash="{{ $hash }}",route!~"/livez|/readyz|/metrics"
{{- end -}}

{{- define "fleet-lib.analysisEnoughTraffic" -}}
{{- $analysis := .Values.canary.analysis -}}
sum(increase(http_requests_total{ {{- include "fleet-lib.analysisSelector" . -}} }[{{ $analysis.window }}])) >= {{ $analysis.minRequests }}
{{- end -}}

{{- define "fleet-lib.analysisTemplate" -}}
{{- if and .Values.canary.enabled .Values.canary.analysis.enabled -}}
{{- $analysis := .Values.canary.analysis -}}
{{- $selector := include "fleet-lib.analysisSelector" . -}}
---
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: {{ include "fleet-lib.name" . }}-canary
  labels:
    {{- include "fleet-lib.labels" . | nindent 4 }}
spec:
  args:
    - name: canary-hash
  metrics:
    - name: success-rate
      initialDelay: {{ $analysis.initialDelay }}
      interval: {{ $analysis.interval }}
      failureLimit: {{ $analysis.failureLimit }}
      consecutiveErrorLimit: {{ $analysis.consecutiveErrorLimit }}
      successCondition: "len(result) == 0 || isNaN(result[0]) || result[0] >= {{ $analysis.minSuccessRate }}"
      provider:
        prometheus:
          address: {{ $analysis.prometheusAddress }}
          query: |
            sum(rate(http_requests_total{ {{- $selector }},status!~"5.."}[{{ $analysis.window }}]))
            /
            sum(rate(http_requests_total{ {{- $selector }}}[{{ $analysis.window }}]))
            and
            {{ include "fleet-lib.analysisEnoughTraffic" . }}
    - name: p95-latency
      initialDelay: {{ $analysis.initialDelay }}
      interval: {{ $analysis.interval }}
      failureLimit: {{ $analysis.failureLimit }}
      consecutiveErrorLimit: {{ $analysis.consecutiveErrorLimit }}
      successCondition: "len(result) == 0 || isNaN(result[0]) || result[0] <= {{ $analysis.maxP95LatencySeconds }}"
      provider:
        prometheus:
          address: {{ $analysis.prometheusAddress }}
          query: |
            histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{ {{- $selector }}}[{{ $analysis.window }}])))
            and
            {{ include "fleet-lib.analysisEnoughTraffic" . }}
{{- end -}}
{{- end -}}
