{{/* Names: the release's full name, trimmed to a DNS label. */}}
{{- define "medeval.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "medeval.coordinator" -}}
{{- printf "%s-coordinator" (include "medeval.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* host:port that workers and clients dial. */}}
{{- define "medeval.coordinatorAddress" -}}
{{- printf "%s.%s.svc:%d" (include "medeval.coordinator" .) .Release.Namespace (int .Values.coordinator.port) -}}
{{- end -}}

{{- define "medeval.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "medeval.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* An image reference from {repository, tag}; the tag defaults to the chart's appVersion. */}}
{{- define "medeval.image" -}}
{{- $img := index . 0 -}}
{{- $root := index . 1 -}}
{{- printf "%s:%s" $img.repository (default $root.Chart.AppVersion $img.tag) -}}
{{- end -}}

{{/*
Flags that let a client (worker or submit Job) reach the coordinator through the
token and TLS settings; the files come from the volumes in medeval.clientVolumes.
*/}}
{{- define "medeval.clientSecurityArgs" -}}
{{- with .Values.security }}
{{- if .token.existingSecret }}
- --token-file=/etc/medeval/token/{{ .token.key }}
{{- end }}
{{- if .tls.existingSecret }}
- --tls-ca=/etc/medeval/tls/ca.crt
{{- if .tls.mutual }}
- --tls-cert=/etc/medeval/client-tls/tls.crt
- --tls-key=/etc/medeval/client-tls/tls.key
{{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "medeval.clientVolumeMounts" -}}
- name: models
  mountPath: /etc/medeval/models
  readOnly: true
{{- with .Values.security }}
{{- if .token.existingSecret }}
- name: token
  mountPath: /etc/medeval/token
  readOnly: true
{{- end }}
{{- if .tls.existingSecret }}
- name: tls
  mountPath: /etc/medeval/tls
  readOnly: true
{{- if .tls.mutual }}
- name: client-tls
  mountPath: /etc/medeval/client-tls
  readOnly: true
{{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "medeval.clientVolumes" -}}
- name: models
  configMap:
    name: {{ include "medeval.fullname" . }}-models
{{- with .Values.security }}
{{- if .token.existingSecret }}
- name: token
  secret:
    secretName: {{ .token.existingSecret }}
    defaultMode: 0440
{{- end }}
{{- if .tls.existingSecret }}
- name: tls
  secret:
    secretName: {{ .tls.existingSecret }}
    items:
      - key: ca.crt
        path: ca.crt
{{- if .tls.mutual }}
- name: client-tls
  secret:
    secretName: {{ required "security.tls.clientSecret is required with security.tls.mutual" .tls.clientSecret }}
    defaultMode: 0440
{{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The pod security context every medeval pod runs with. */}}
{{- define "medeval.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
fsGroup: {{ .Values.securityContext.fsGroup }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "medeval.containerSecurityContext" -}}
allowPrivilegeEscalation: false
capabilities:
  drop: [ALL]
{{- end -}}
