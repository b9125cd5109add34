{{/*
The pod every Fleet service runs in, shared by the Deployment and the Rollout (and, for the
security context, by the migration Job): restricted Pod Security, read-only root with a
writable /tmp, probes on the chassis endpoints, a graceful stop.
*/}}

{{- define "fleet-lib.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "fleet-lib.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "fleet-lib.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpSizeLimit }}
{{- end -}}

{{- define "fleet-lib.scheduling" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/*
Spread over zones and nodes. `matchLabelKeys` makes each revision spread on its own, so a
rollout's new pods are not packed where the old ones leave room.
*/}}
{{- define "fleet-lib.topologySpreadConstraints" -}}
{{- $hashLabel := ternary "rollouts-pod-template-hash" "pod-template-hash" (.Values.canary.enabled | default false) -}}
{{- range $key := list "topology.kubernetes.io/zone" "kubernetes.io/hostname" }}
- maxSkew: 1
  topologyKey: {{ $key }}
  whenUnsatisfiable: {{ $.Values.topologySpread.whenUnsatisfiable }}
  labelSelector:
    matchLabels:
      {{- include "fleet-lib.selectorLabels" $ | nindent 6 }}
  matchLabelKeys:
    - {{ $hashLabel }}
{{- end }}
{{- end -}}

{{- define "fleet-lib.podTemplate" -}}
metadata:
  labels:
    {{- include "fleet-lib.selectorLabels" . | nindent 4 }}
    app.kubernetes.io/version: {{ include "fleet-lib.imageTag" . | trunc 63 | quote }}
    {{- include "fleet-lib.ownerLabel" . | nindent 4 }}
    {{- include "fleet-lib.meshPodLabels" . | indent 4 }}
  annotations:
    {{- include "fleet-lib.ownerAnnotations" . | nindent 4 }}
    # A change of the ConfigMap rolls the pods (env is read at start only).
    checksum/config: {{ include "fleet-lib.configData" . | sha256sum }}
    {{- include "fleet-lib.meshPodAnnotations" . | indent 4 }}
    {{- with .Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "fleet-lib.name" . }}
  automountServiceAccountToken: false
  enableServiceLinks: false
  terminationGracePeriodSeconds: {{ include "fleet-lib.terminationGracePeriodSeconds" . }}
  securityContext:
    {{- include "fleet-lib.podSecurityContext" . | nindent 4 }}
  {{- with include "fleet-lib.scheduling" . | trim }}
  {{- . | nindent 2 }}
  {{- end }}
  topologySpreadConstraints:
    {{- include "fleet-lib.topologySpreadConstraints" . | trim | nindent 4 }}
  containers:
    - name: {{ include "fleet-lib.name" . }}
      image: {{ include "fleet-lib.image" . | quote }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      args: ["serve"]
      ports:
        - name: http
          containerPort: {{ .Values.service.port | int }}
          protocol: TCP
      envFrom:
        - configMapRef:
            name: {{ include "fleet-lib.name" . }}
        - secretRef:
            name: {{ include "fleet-lib.secretName" . }}
      env:
        - name: SERVICE_VERSION
          value: {{ include "fleet-lib.imageTag" . | quote }}
        {{- range .Values.secretMounts }}
        - name: {{ .envVar }}
          value: {{ .mountPath | quote }}
        {{- end }}
      # Liveness never touches a dependency (a database outage must not restart healthy pods);
      # the startup probe holds it off while the service opens its connections.
      startupProbe:
        httpGet:
          path: /livez
          port: http
        periodSeconds: 2
        timeoutSeconds: 2
        failureThreshold: 30
      livenessProbe:
        httpGet:
          path: /livez
          port: http
        periodSeconds: 10
        timeoutSeconds: 2
        failureThreshold: 3
      # 503 while a dependency is down or from SIGTERM on (draining): out of the Service.
      readinessProbe:
        httpGet:
          path: /readyz
          port: http
        periodSeconds: 5
        timeoutSeconds: 3
        failureThreshold: 2
      lifecycle:
        # Keep serving while the endpoint removal reaches every proxy, then SIGTERM starts the
        # drain. /bin/sleep is part of the python slim base image.
        preStop:
          exec:
            command: ["/bin/sleep", {{ .Values.gracefulShutdown.preStopSleepSeconds | int | toString | quote }}]
      resources:
        {{- toYaml .Values.resources | nindent 8 }}
      securityContext:
        {{- include "fleet-lib.containerSecurityContext" . | nindent 8 }}
      volumeMounts:
        - name: tmp
          mountPath: /tmp
        {{- range .Values.secretMounts }}
        - name: {{ .name }}
          mountPath: {{ .mountPath }}
          readOnly: true
        {{- end }}
  volumes:
    {{- include "fleet-lib.tmpVolume" . | nindent 4 }}
    {{- range .Values.secretMounts }}
    - name: {{ .name }}
      secret:
        secretName: {{ .secretName }}
        defaultMode: 288 # 0440: group-readable, the pod's fsGroup owns the files
    {{- end }}
{{- end -}}
