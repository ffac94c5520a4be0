{{/*
Standard helpers, all prefixed with the chart name so that they cannot collide with a
parent chart's or another subchart's helpers.

Every helper here and in _sidecar.tpl takes a root-like context: `.` inside this chart,
or `(index .Subcharts "llm-shadow")` from a parent chart (this chart's own .Values,
.Chart, .Release, .Files and .Capabilities).
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "llm-shadow.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The resource name prefix: release name plus chart name, truncated to 63 characters (the
DNS label limit); just the release name when it already contains the chart name.
Suffixed resources ("-config", "-redis", ...) truncate the prefix further so the whole
name still fits.
*/}}
{{- define "llm-shadow.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* A component's resource name: fullname-suffix within 63 characters. Takes (list ctx suffix). */}}
{{- define "llm-shadow.componentName" -}}
{{- $ctx := index . 0 }}
{{- $suffix := index . 1 }}
{{- $prefix := include "llm-shadow.fullname" $ctx | trunc (int (sub 62 (len $suffix))) | trimSuffix "-" }}
{{- printf "%s-%s" $prefix $suffix }}
{{- end }}

{{/* Chart name and version, for the helm.sh/chart label. */}}
{{- define "llm-shadow.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every resource. */}}
{{- define "llm-shadow.labels" -}}
helm.sh/chart: {{ include "llm-shadow.chart" . }}
{{ include "llm-shadow.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: llm-shadow
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels; each workload adds app.kubernetes.io/component so selectors never overlap. */}}
{{- define "llm-shadow.selectorLabels" -}}
app.kubernetes.io/name: {{ include "llm-shadow.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The ServiceAccount the pod runs as. */}}
{{- define "llm-shadow.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "llm-shadow.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
An image reference from {registry, repository, tag, digest}; the tag defaults to the
given default (the chart's appVersion for the sidecar). Takes (list imageValues defaultTag).
*/}}
{{- define "llm-shadow.image" -}}
{{- $image := index . 0 }}
{{- $tag := default (index . 1) $image.tag | toString }}
{{- $repository := $image.repository }}
{{- if $image.registry }}
{{- $repository = printf "%s/%s" $image.registry $image.repository }}
{{- end }}
{{- if $image.digest }}
{{- printf "%s@%s" $repository $image.digest }}
{{- else }}
{{- printf "%s:%s" $repository $tag }}
{{- end }}
{{- end }}

{{/* Redis Service name of the in-chart Redis. */}}
{{- define "llm-shadow.redis.fullname" -}}
{{- include "llm-shadow.componentName" (list . "redis") }}
{{- end }}

{{/* Service name of the in-chart Jaeger. */}}
{{- define "llm-shadow.jaeger.fullname" -}}
{{- include "llm-shadow.componentName" (list . "jaeger") }}
{{- end }}

{{/*
Validation: fail early, with a message that says which value to change, on
combinations the schema cannot express. Included by every template that renders a pod,
and callable from a parent chart.
*/}}
{{- define "llm-shadow.validate" -}}
{{- include "llm-shadow.validateTerminationGracePeriod" . }}
{{- include "llm-shadow.validatePorts" . }}
{{- include "llm-shadow.validateNativeSidecar" . }}
{{- include "llm-shadow.validateRedis" . }}
{{- include "llm-shadow.validateTracing" . }}
{{- end }}

{{/*
The pod's grace period must cover the sidecar's drain (config proxy.graceful_shutdown_seconds)
plus, for a classic sidecar, its preStop sleep; otherwise Kubernetes kills in-flight
streams mid-answer.
*/}}
{{- define "llm-shadow.validateTerminationGracePeriod" -}}
{{- $grace := int .Values.terminationGracePeriodSeconds }}
{{- $drain := include "llm-shadow.gracefulShutdownSeconds" . | float64 }}
{{- $preStop := 0 }}
{{- if not .Values.sidecar.native }}
{{- $preStop = int .Values.sidecar.classic.preStopSleepSeconds }}
{{- end }}
{{- if le (float64 $grace) (addf $drain $preStop) }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must be greater than the sidecar's drain time: config proxy.graceful_shutdown_seconds (%v)%s. Raise terminationGracePeriodSeconds or lower config.overrides.proxy.graceful_shutdown_seconds." $grace $drain (ternary (printf " plus sidecar.classic.preStopSleepSeconds (%d)" $preStop) "" (gt $preStop 0))) }}
{{- end }}
{{- end }}

{{/*
The sidecar's drain budget in seconds: config proxy.graceful_shutdown_seconds, or the
proxy's default (30) when unset or when the configuration is an existing ConfigMap.
*/}}
{{- define "llm-shadow.gracefulShutdownSeconds" -}}
{{- $seconds := 30 }}
{{- if not .Values.config.existingConfigMap }}
{{- $seconds = dig "proxy" "graceful_shutdown_seconds" 30 (include "llm-shadow.configData" . | fromJson) }}
{{- end }}
{{- $seconds }}
{{- end }}

{{- define "llm-shadow.validatePorts" -}}
{{- if eq (int .Values.sidecar.proxyPort) (int .Values.sidecar.adminPort) }}
{{- fail (printf "sidecar.proxyPort and sidecar.adminPort must differ (both are %d)" (int .Values.sidecar.proxyPort)) }}
{{- end }}
{{- end }}

{{- define "llm-shadow.validateNativeSidecar" -}}
{{- if and .Values.sidecar.native (semverCompare "<1.29.0-0" .Capabilities.KubeVersion.Version) }}
{{- fail (printf "sidecar.native=true needs Kubernetes >= 1.29 (native sidecar containers); this cluster is %s. Set sidecar.native=false for a classic sidecar container." .Capabilities.KubeVersion.Version) }}
{{- end }}
{{- end }}

{{- define "llm-shadow.validateRedis" -}}
{{- $external := or .Values.redis.url .Values.redis.existingSecret }}
{{- if and .Values.redis.internal.enabled $external }}
{{- fail "redis: choose one Redis: either redis.internal.enabled=true (trials) or an external redis.url / redis.existingSecret, not both." }}
{{- end }}
{{- if and .Values.redis.url .Values.redis.existingSecret }}
{{- fail "redis: set redis.url or redis.existingSecret, not both." }}
{{- end }}
{{- if regexMatch "://[^/]*@" .Values.redis.url }}
{{- fail "redis.url must not carry credentials (they would be stored in the release and shown by kubectl describe): put the whole URL in a Secret and set redis.existingSecret / redis.existingSecretKey." }}
{{- end }}
{{- $configUrl := dig "redis" "url" "" (include "llm-shadow.configData" . | fromJson) }}
{{- if and (not .Values.config.existingConfigMap) (regexMatch "://[^/]*@" $configUrl) }}
{{- fail "config redis.url must not carry credentials (a ConfigMap is not a Secret): put the URL in a Secret and set redis.existingSecret." }}
{{- end }}
{{- if and (not .Values.redis.internal.enabled) (not $external) (not .Values.config.existingConfigMap) (not (dig "redis" "url" "" .Values.config.overrides)) }}
{{- fail "redis: no Redis configured. Set redis.url (no password) or redis.existingSecret (URL with a password), or redis.internal.enabled=true for a trial." }}
{{- end }}
{{- end }}

{{- define "llm-shadow.validateTracing" -}}
{{- if and .Values.tracing.enabled .Values.jaeger.enabled .Values.tracing.otlpEndpoint }}
{{- fail "tracing: tracing.otlpEndpoint is set and jaeger.enabled=true: choose one (set jaeger.enabled=false to export to your own collector)." }}
{{- end }}
{{- if and .Values.tracing.enabled (not .Values.jaeger.enabled) (not .Values.tracing.otlpEndpoint) }}
{{- fail "tracing: tracing.enabled=true needs somewhere to send traces: set tracing.otlpEndpoint (your collector), or jaeger.enabled=true (trial), or tracing.enabled=false." }}
{{- end }}
{{- end }}
