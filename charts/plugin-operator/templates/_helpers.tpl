{{/*
Name of the chart, overridable by nameOverride.
*/}}
{{- define "plugin-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name: the release name when it contains the chart name (so
`helm install plugin-operator` names objects exactly as `kubectl apply -k config/default`
does), else <release>-<chart>. Truncated so that the longest suffix still fits in 63 chars.
*/}}
{{- define "plugin-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "plugin-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels of every object.
*/}}
{{- define "plugin-operator.labels" -}}
helm.sh/chart: {{ include "plugin-operator.chart" . }}
{{ include "plugin-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Labels that identify this release's objects.
*/}}
{{- define "plugin-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "plugin-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Selector labels of the manager's pods.
*/}}
{{- define "plugin-operator.managerSelectorLabels" -}}
{{ include "plugin-operator.selectorLabels" . }}
app.kubernetes.io/component: manager
control-plane: controller-manager
{{- end }}

{{- define "plugin-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (printf "%s-controller-manager" (include "plugin-operator.fullname" .)) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The manager's image: repository@digest, or repository:tag (tag defaults to appVersion).
*/}}
{{- define "plugin-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
Name of the metrics port and scheme.
*/}}
{{- define "plugin-operator.metricsScheme" -}}
{{- if .Values.metrics.secure }}https{{ else }}http{{ end }}
{{- end }}
