{{/*
How a canary is judged: its own requests only (the ServiceMonitor copies the pods'
`rollouts-pod-template-hash` label onto the series as `rollouts_pod_template_hash`; the Rollout
passes the canary's hash in), probes and /metrics excluded, like the SLO rules.

- success rate: share of non-5xx responses; p95 latency: from the request duration histogram.
- Fewer than `minRequests` requests in the window give an empty result (the `and` filter): too
  little traffic to judge, so the metric passes and the probes alone decide. A canary that
  does get traffic and fails a measurement more than `failureLimit` times fails the analysis,
  which aborts the rollout: the canary is scaled down and the stable pods carry everything.
- event handling (services that consume events, `canary.analysis.events.enabled`): share of the
  events the canary consumed that were handled at the first attempt (`events_consumed_total`
  outcome `processed` or `duplicate`, not `retried` or `dead_lettered`), so a canary that fails
  on the messages it takes from the shared queue is caught even when it serves little HTTP (the
  worker). Fewer than `minEvents` events in the window pass, like thin HTTP traffic.
- `{{args.canary-hash}}` is Argo Rollouts' placeholder, escaped from Helm.
*/}}

{{- define "fleet-lib.analysisPodSelector" -}}
{{- $hash := "{{args.canary-hash}}" -}}
job="{{ include "fleet-lib.name" . }}",namespace="{{ .Release.Namespace }}",rollouts_pod_template_hash="{{ $hash }}"
{{- end -}}

{{- define "fleet-lib.analysisSelector" -}}
{{ include "fleet-lib.analysisPodSelector" . }},route!~"/livez|/readyz|/metrics"
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
{{- if $analysis.events.enabled }}
{{- $pods := include "fleet-lib.analysisPodSelector" . }}
    - name: event-handling
      initialDelay: {{ $analysis.initialDelay }}
      interval: {{ $analysis.interval }}
      failureLimit: {{ $analysis.failureLimit }}
      consecutiveErrorLimit: {{ $analysis.consecutiveErrorLimit }}
      successCondition: "len(result) == 0 || isNaN(result[0]) || result[0] >= {{ $analysis.events.minHandledRate }}"
      provider:
        prometheus:
          address: {{ $analysis.prometheusAddress }}
          query: |
            sum(rate(events_consumed_total{ {{- $pods }},outcome=~"processed|duplicate"}[{{ $analysis.window }}]))
            /
            sum(rate(events_consumed_total{ {{- $pods }}}[{{ $analysis.window }}]))
            and
            sum(increase(events_consumed_total{ {{- $pods }}}[{{ $analysis.window }}])) >= {{ $analysis.events.minEvents }}
{{- end }}
{{- end -}}
{{- end -}}
