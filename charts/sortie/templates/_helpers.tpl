{{- define "sortie.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "sortie.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "sortie.labels" -}}
{{ include "sortie.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "sortie.masterKeySecret" -}}
{{- default (printf "%s-master-key" (include "sortie.fullname" .)) .Values.masterKey.existingSecret -}}
{{- end -}}

{{- define "sortie.scheme" -}}
{{- if .Values.tls.enabled }}HTTPS{{ else }}HTTP{{ end -}}
{{- end -}}

{{- define "sortie.bootstrapSecret" -}}
{{- default (printf "%s-bootstrap" (include "sortie.fullname" .)) .Values.bootstrap.existingSecret -}}
{{- end -}}
