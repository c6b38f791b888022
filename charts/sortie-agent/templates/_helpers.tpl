{{- define "sortie-agent.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "sortie-agent.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "sortie-agent.labels" -}}
{{ include "sortie-agent.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "sortie-agent.serviceAccountName" -}}
{{- default (include "sortie-agent.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{/* The CA bundle's volume source, empty when there is none. */}}
{{- define "sortie-agent.caVolume" -}}
{{- if .Values.caBundle.pem -}}
configMap: {name: {{ include "sortie-agent.fullname" . }}-ca, items: [{key: ca.crt, path: ca.crt}]}
{{- else if .Values.caBundle.existingConfigMap -}}
configMap: {name: {{ .Values.caBundle.existingConfigMap }}, items: [{key: {{ .Values.caBundle.key | quote }}, path: ca.crt}]}
{{- else if .Values.caBundle.existingSecret -}}
secret: {secretName: {{ .Values.caBundle.existingSecret }}, items: [{key: {{ .Values.caBundle.key | quote }}, path: ca.crt}]}
{{- end -}}
{{- end -}}
