{{/*
The sidecar as named templates, so that a team's own chart can add it to its own
Deployment (the shape of jaeger's query.oAuthSidecar). This chart's deployment.yaml uses
exactly these templates. From a parent chart that has this chart as a dependency:

  {{- $shadow := index .Subcharts "llm-shadow" }}
  {{- include "llm-shadow.validate" $shadow }}
  template:
    metadata:
      labels:
        {{- include "llm-shadow.sidecar.podLabels" $shadow | nindent 8 }}
      annotations:
        {{- include "llm-shadow.sidecar.podAnnotations" $shadow | nindent 8 }}
    spec:
      terminationGracePeriodSeconds: {{ (index .Values "llm-shadow").terminationGracePeriodSeconds }}
      {{- if (index .Values "llm-shadow").sidecar.native }}
      initContainers:
        {{- include "llm-shadow.sidecar" $shadow | nindent 8 }}
      {{- end }}
      containers:
        - name: my-app
          env:
            {{- include "llm-shadow.sidecar.appEnv" $shadow | nindent 12 }}
        {{- if not (index .Values "llm-shadow").sidecar.native }}
        {{- include "llm-shadow.sidecar" $shadow | nindent 8 }}
        {{- end }}
      volumes:
        {{- include "llm-shadow.sidecar.volumes" $shadow | nindent 8 }}

with `llm-shadow: {app: {enabled: false}}` in the parent's values: the subchart then
renders the ConfigMaps, the admin Service, Redis and Jaeger, and no Deployment of its own.
tests/charts/sidecar-parent is a working example.
*/}}

{{/* Where the image and the chart put the configuration (the Dockerfile's contract). */}}
{{- define "llm-shadow.configDir" -}}
/etc/llm-shadow
{{- end }}

{{/* The sidecar container, as one list item for `containers:` or `initContainers:`. */}}
{{- define "llm-shadow.sidecar" -}}
{{- $sidecar := .Values.sidecar }}
{{- $configDir := include "llm-shadow.configDir" . -}}
- name: {{ $sidecar.name }}
  image: {{ include "llm-shadow.image" (list $sidecar.image .Chart.AppVersion) | quote }}
  imagePullPolicy: {{ $sidecar.image.pullPolicy }}
  {{- if $sidecar.native }}
  {{- /* A native sidecar: started before, and stopped after, the application. */}}
  restartPolicy: Always
  {{- end }}
  args:
    - --log-level
    - {{ $sidecar.logLevel }}
    - serve
    {{- range $sidecar.extraArgs }}
    - {{ . | quote }}
    {{- end }}
  ports:
    - name: shadow-proxy
      containerPort: {{ $sidecar.proxyPort }}
      protocol: TCP
    - name: shadow-admin
      containerPort: {{ $sidecar.adminPort }}
      protocol: TCP
  env:
    {{- include "llm-shadow.sidecar.env" . | nindent 4 }}
  {{- $modelSecretAsEnvFrom := and .Values.config.existingConfigMap .Values.modelApiKeys.existingSecret }}
  {{- if or $sidecar.extraEnvFrom $modelSecretAsEnvFrom }}
  envFrom:
    {{- if $modelSecretAsEnvFrom }}
    {{- /* The models are in a ConfigMap the chart cannot read: import the whole key Secret. */}}
    - secretRef:
        name: {{ .Values.modelApiKeys.existingSecret }}
        optional: {{ .Values.modelApiKeys.optional }}
    {{- end }}
    {{- with $sidecar.extraEnvFrom }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- end }}
  {{- with $sidecar.startupProbe }}
  {{- if .enabled }}
  startupProbe:
    httpGet:
      path: /healthz
      port: shadow-admin
    periodSeconds: {{ .periodSeconds }}
    timeoutSeconds: {{ .timeoutSeconds }}
    failureThreshold: {{ .failureThreshold }}
  {{- end }}
  {{- end }}
  {{- with $sidecar.livenessProbe }}
  {{- if .enabled }}
  livenessProbe:
    httpGet:
      path: /healthz
      port: shadow-admin
    periodSeconds: {{ .periodSeconds }}
    timeoutSeconds: {{ .timeoutSeconds }}
    failureThreshold: {{ .failureThreshold }}
  {{- end }}
  {{- end }}
  {{- with $sidecar.readinessProbe }}
  {{- if .enabled }}
  readinessProbe:
    httpGet:
      path: /readyz
      port: shadow-admin
    periodSeconds: {{ .periodSeconds }}
    timeoutSeconds: {{ .timeoutSeconds }}
    failureThreshold: {{ .failureThreshold }}
  {{- end }}
  {{- end }}
  {{- if and (not $sidecar.native) (gt (int $sidecar.classic.preStopSleepSeconds) 0) }}
  {{- /* A classic sidecar gets SIGTERM together with the application: wait for it first. */}}
  lifecycle:
    preStop:
      exec:
        command: ["sleep", {{ $sidecar.classic.preStopSleepSeconds | quote }}]
  {{- end }}
  {{- with $sidecar.resources }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $sidecar.securityContext }}
  securityContext:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  volumeMounts:
    - name: llm-shadow-config
      mountPath: {{ $configDir }}/config.json
      subPath: config.json
      readOnly: true
    - name: llm-shadow-policies
      mountPath: {{ $configDir }}/policies
      readOnly: true
    - name: llm-shadow-tmp
      mountPath: /tmp
    {{- with $sidecar.extraVolumeMounts }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end }}

{{/*
The sidecar's environment. Listen addresses go through LLM_SHADOW_* rather than `serve`
flags so that the commands an operator runs with `kubectl exec` (`llm-shadow status`,
`set`, `rollback`, `report`) see the same settings as the server.
*/}}
{{- define "llm-shadow.sidecar.env" -}}
{{- $sidecar := .Values.sidecar -}}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: NODE_NAME
  valueFrom:
    fieldRef:
      fieldPath: spec.nodeName
- name: LLM_SHADOW_CONFIG
  value: {{ include "llm-shadow.configDir" . }}/config.json
- name: LLM_SHADOW_REPLICA_ID
  value: $(POD_NAME)
- name: LLM_SHADOW_HOST
  value: 127.0.0.1
- name: LLM_SHADOW_PORT
  value: {{ $sidecar.proxyPort | quote }}
- name: LLM_SHADOW_ADMIN_HOST
  value: {{ $sidecar.adminHost | quote }}
- name: LLM_SHADOW_ADMIN_PORT
  value: {{ $sidecar.adminPort | quote }}
{{- if $sidecar.forceLegacy }}
- name: LLM_SHADOW_FORCE_LEGACY
  value: "1"
{{- end }}
{{- include "llm-shadow.sidecar.redisEnv" . }}
{{- with .Values.adminToken.existingSecret }}
- name: LLM_SHADOW_ADMIN_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $.Values.adminToken.key }}
{{- end }}
{{- include "llm-shadow.sidecar.otelEnv" . }}
{{- include "llm-shadow.sidecar.modelKeyEnv" . }}
{{- with $sidecar.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* LLM_SHADOW_REDIS_URL: from a Secret, a plain external URL, or the in-chart Redis. */}}
{{- define "llm-shadow.sidecar.redisEnv" -}}
{{- $redis := .Values.redis }}
{{- if $redis.existingSecret }}
- name: LLM_SHADOW_REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ $redis.existingSecret }}
      key: {{ $redis.existingSecretKey }}
{{- else if $redis.url }}
- name: LLM_SHADOW_REDIS_URL
  value: {{ $redis.url | quote }}
{{- else if $redis.internal.enabled }}
{{- $host := printf "%s.%s.svc" (include "llm-shadow.redis.fullname" .) .Release.Namespace }}
{{- with $redis.internal.auth.existingSecret }}
- name: LLM_SHADOW_REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $redis.internal.auth.existingSecretKey }}
- name: LLM_SHADOW_REDIS_URL
  value: {{ printf "redis://:$(LLM_SHADOW_REDIS_PASSWORD)@%s:6379/0" $host | quote }}
{{- else }}
- name: LLM_SHADOW_REDIS_URL
  value: {{ printf "redis://%s:6379/0" $host | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/* Standard OpenTelemetry SDK variables. */}}
{{- define "llm-shadow.sidecar.otelEnv" -}}
{{- $tracing := .Values.tracing }}
- name: OTEL_SERVICE_NAME
  value: {{ $tracing.serviceName | quote }}
{{- if $tracing.enabled }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ include "llm-shadow.otlpEndpoint" . | quote }}
- name: OTEL_EXPORTER_OTLP_PROTOCOL
  value: {{ $tracing.otlpProtocol | quote }}
{{- $attributes := list "k8s.pod.name=$(POD_NAME)" "k8s.namespace.name=$(POD_NAMESPACE)" "k8s.node.name=$(NODE_NAME)" (printf "k8s.container.name=%s" .Values.sidecar.name) "service.instance.id=$(POD_NAME)" }}
{{- range $key, $value := $tracing.resourceAttributes }}
{{- $attributes = append $attributes (printf "%s=%v" $key $value) }}
{{- end }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ join "," $attributes | quote }}
{{- else }}
- name: OTEL_SDK_DISABLED
  value: "true"
{{- end }}
{{- end }}

{{/* The OTLP endpoint: the configured collector, else the in-chart Jaeger's port for the protocol. */}}
{{- define "llm-shadow.otlpEndpoint" -}}
{{- if .Values.tracing.otlpEndpoint }}
{{- .Values.tracing.otlpEndpoint }}
{{- else }}
{{- $port := ternary 4317 4318 (eq .Values.tracing.otlpProtocol "grpc") }}
{{- printf "http://%s.%s.svc:%d" (include "llm-shadow.jaeger.fullname" .) .Release.Namespace $port }}
{{- end }}
{{- end }}

{{/*
One variable per orchestrator model that names an `api_key_env` in config.json, read
from modelApiKeys.secretKeyRefs[VAR] or else from modelApiKeys.existingSecret (key VAR).
A model whose key has no Secret gets no variable: the orchestrator cannot call it. With
config.existingConfigMap the chart cannot see the models, so the container imports the
whole modelApiKeys.existingSecret with envFrom instead (and secretKeyRefs still apply).
*/}}
{{- define "llm-shadow.sidecar.modelKeyEnv" -}}
{{- $keys := .Values.modelApiKeys }}
{{- $seen := dict }}
{{- range $var, $ref := $keys.secretKeyRefs }}
{{- $_ := set $seen $var true }}
- name: {{ $var }}
  valueFrom:
    secretKeyRef:
      name: {{ $ref.name }}
      key: {{ $ref.key }}
      optional: {{ $keys.optional }}
{{- end }}
{{- if and $keys.existingSecret (not .Values.config.existingConfigMap) }}
{{- range (include "llm-shadow.configData" . | fromJson).models }}
{{- $var := .api_key_env }}
{{- if and $var (not (hasKey $seen $var)) }}
{{- $_ := set $seen $var true }}
- name: {{ $var }}
  valueFrom:
    secretKeyRef:
      name: {{ $keys.existingSecret }}
      key: {{ $var }}
      optional: {{ $keys.optional }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* The legacy container's SDK base URLs, pointing at the sidecar on localhost (env list items). */}}
{{- define "llm-shadow.sidecar.appEnv" -}}
{{- include "llm-shadow.sidecar.appEnvItems" . | trim }}
{{- end }}

{{- define "llm-shadow.sidecar.appEnvItems" -}}
{{- $port := .Values.sidecar.proxyPort }}
{{- range $name, $path := .Values.app.baseUrlEnv }}
{{- if $path }}
- name: {{ $name }}
  value: {{ printf "http://127.0.0.1:%d%s" (int $port) $path | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/* Pod labels: the admin Service and the in-chart Redis's NetworkPolicy select on this one. */}}
{{- define "llm-shadow.sidecar.podLabels" -}}
llm-shadow/sidecar: {{ include "llm-shadow.fullname" . }}
{{- end }}

{{/* Pod annotations: a configuration change changes the checksum, so the pods roll. */}}
{{- define "llm-shadow.sidecar.podAnnotations" -}}
checksum/config: {{ include "llm-shadow.configChecksum" . }}
{{- end }}

{{/* The sidecar's volumes, as list items for the pod's `volumes:`. */}}
{{- define "llm-shadow.sidecar.volumes" -}}
- name: llm-shadow-config
  configMap:
    name: {{ default (include "llm-shadow.componentName" (list . "config")) .Values.config.existingConfigMap }}
    defaultMode: 0444
    items:
      - key: config.json
        path: config.json
- name: llm-shadow-policies
  configMap:
    name: {{ default (include "llm-shadow.componentName" (list . "policies")) .Values.policies.existingConfigMap }}
    defaultMode: 0444
    {{- if not .Values.policies.existingConfigMap }}
    {{- with (include "llm-shadow.policyFiles" . | fromJson) }}
    items:
      {{- range $path, $file := . }}
      - key: {{ $file.key }}
        path: {{ $path }}
      {{- end }}
    {{- end }}
    {{- end }}
- name: llm-shadow-tmp
  emptyDir:
    sizeLimit: {{ .Values.sidecar.tmpSizeLimit }}
{{- end }}

{{/*
config.json as rendered into the ConfigMap: the chart's copy of the repository's file
(files/config.json) unless config.useDefaults=false, with config.overrides deep-merged
over it, and flags.force_legacy_file set to sidecar.forceLegacyFile unless the
configuration names its own. A JSON string.
*/}}
{{- define "llm-shadow.configData" -}}
{{- $config := dict }}
{{- if .Values.config.useDefaults }}
{{- $config = .Files.Get "files/config.json" | fromJson }}
{{- end }}
{{- $config = mergeOverwrite $config (deepCopy .Values.config.overrides) }}
{{- with .Values.sidecar.forceLegacyFile }}
{{- $flags := get $config "flags" | default dict }}
{{- if not (get $flags "force_legacy_file") }}
{{- $_ := set $flags "force_legacy_file" . }}
{{- $_ := set $config "flags" $flags }}
{{- end }}
{{- end }}
{{- toPrettyJson $config }}
{{- end }}

{{/*
The policy files as JSON: {relative path: {key, content}}. A ConfigMap key cannot hold
a "/", so files in sub-folders get "__" in their key and the volume's items put them back
at their path.
*/}}
{{- define "llm-shadow.policyFiles" -}}
{{- $files := dict }}
{{- if .Values.policies.useDefaults }}
{{- range $name, $content := .Files.Glob "files/policies/**" }}
{{- $path := trimPrefix "files/policies/" $name }}
{{- $_ := set $files $path (dict "key" (replace "/" "__" $path) "content" (toString $content)) }}
{{- end }}
{{- end }}
{{- range $path, $content := .Values.policies.files }}
{{- $text := $content }}
{{- if not (kindIs "string" $content) }}
{{- $text = toPrettyJson $content }}
{{- end }}
{{- $_ := set $files $path (dict "key" (replace "/" "__" $path) "content" $text) }}
{{- end }}
{{- toJson $files }}
{{- end }}

{{/* sha256 over everything the sidecar reads from its ConfigMaps (or their names, when existing). */}}
{{- define "llm-shadow.configChecksum" -}}
{{- $parts := list (include "llm-shadow.configData" .) (include "llm-shadow.policyFiles" .) .Values.config.existingConfigMap .Values.policies.existingConfigMap }}
{{- toJson $parts | sha256sum }}
{{- end }}
