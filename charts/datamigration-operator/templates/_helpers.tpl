{{/* The chart name, shortened to a DNS label. */}}
{{- define "dmo.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The base name of every object: the release name when it already contains the chart name
(release "datamigration-operator" gives "datamigration-operator"), otherwise "<release>-<chart>".
*/}}
{{- define "dmo.fullname" -}}
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

{{- define "dmo.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels that select the operator's pods (immutable in the Deployment's selector). */}}
{{- define "dmo.selectorLabels" -}}
app.kubernetes.io/name: {{ include "dmo.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "dmo.labels" -}}
{{ include "dmo.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/part-of: datamigration-operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ include "dmo.chart" . }}
{{- end }}

{{/* The operator's ServiceAccount. */}}
{{- define "dmo.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "dmo.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The operator's image reference (a digest wins over a tag). */}}
{{- define "dmo.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/* The image of the engine Jobs: by default the operator's own. */}}
{{- define "dmo.engineImage" -}}
{{- default (include "dmo.image" .) .Values.engine.image }}
{{- end }}

