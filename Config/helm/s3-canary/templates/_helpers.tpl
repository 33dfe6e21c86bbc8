{{/* The chart's name, or nameOverride. */}}
{{- define "s3-canary.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The resources' name: fullnameOverride, else RELEASE-NAME (just RELEASE when it already holds the name). */}}
{{- define "s3-canary.fullname" -}}
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

{{/* Labels of every object. */}}
{{- define "s3-canary.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "s3-canary.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels that select this release's pods (immutable once installed: keep them few). */}}
{{- define "s3-canary.selectorLabels" -}}
app.kubernetes.io/name: {{ include "s3-canary.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The container port: the port of config.listen (9340 when unset), so the config stays the one place to set it. */}}
{{- define "s3-canary.port" -}}
{{- $listen := toString (default "0.0.0.0:9340" .Values.config.listen) }}
{{- last (splitList ":" $listen) | int }}
{{- end }}

{{- define "s3-canary.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The configuration file: .Values.config, plus the sharding that follows replicaCount in a sharded fleet. */}}
{{- define "s3-canary.config" -}}
{{- if not (has .Values.mode (list "deployment" "statefulset")) }}
{{- fail (printf "mode must be deployment or statefulset, not %q" .Values.mode) }}
{{- end }}
{{- $config := deepCopy .Values.config }}
{{- if .Values.sharding.enabled }}
{{- if ne .Values.mode "statefulset" }}
{{- fail "sharding.enabled needs mode: statefulset (a shard is taken from the pod's ordinal)" }}
{{- end }}
{{- $_ := set $config "sharding" (dict "shards" (int .Values.replicaCount) "shard_from_hostname" true) }}
{{- end }}
{{- toYaml $config }}
{{- end }}
