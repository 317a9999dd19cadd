{{/* The chart's name, or nameOverride. */}}
{{- define "medeval.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's full name, the prefix of every object's name. */}}
{{- define "medeval.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "medeval.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
(list PREFIX SUFFIX MAX): PREFIX+SUFFIX if it has at most MAX characters, else the
start of PREFIX, a hash of the whole name and SUFFIX, so that long names stay
different when only their ends differ, and still say what they name.
*/}}
{{- define "medeval.shorten" -}}
{{- $prefix := index . 0 -}}
{{- $suffix := index . 1 -}}
{{- $max := int (index . 2) -}}
{{- $name := printf "%s%s" $prefix $suffix -}}
{{- if le (len $name) $max -}}
{{- $name -}}
{{- else -}}
{{- printf "%s-%s%s" ($prefix | trunc (int (sub (sub $max (len $suffix)) 7)) | trimSuffix "-") ($name | sha256sum | trunc 6) $suffix -}}
{{- end -}}
{{- end -}}

{{/*
The coordinator's StatefulSet and client Service. At most 52 characters: the
StatefulSet's pods carry a controller-revision-hash label of this name and an 11
character hash, and label values stop at 63.
*/}}
{{- define "medeval.coordinator" -}}
{{- include "medeval.shorten" (list (include "medeval.fullname" .) "-coordinator" 52) -}}
{{- end -}}

{{/* The StatefulSet's governing (headless) Service: pod DNS names, no load balancing. */}}
{{- define "medeval.coordinatorHeadless" -}}
{{- printf "%s-headless" (include "medeval.coordinator" .) -}}
{{- end -}}

{{- define "medeval.workersService" -}}
{{- include "medeval.shorten" (list (include "medeval.fullname" .) "-workers" 63) -}}
{{- end -}}

{{/* (list ROOT POOL): the pool's Deployment (its pods' names and labels derive from it). */}}
{{- define "medeval.poolName" -}}
{{- $root := index . 0 -}}
{{- include "medeval.shorten" (list (include "medeval.fullname" $root) (printf "-%s" (index . 1).name) 63) -}}
{{- end -}}

{{- define "medeval.submitJob" -}}
{{- include "medeval.shorten" (list (include "medeval.fullname" .) "-submit" 63) -}}
{{- end -}}

{{- define "medeval.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "medeval.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* host:port that workers and clients dial. */}}
{{- define "medeval.coordinatorAddress" -}}
{{- printf "%s.%s.svc:%d" (include "medeval.coordinator" .) .Release.Namespace (int .Values.coordinator.port) -}}
{{- end -}}

{{/*
Label values and names are quoted wherever they come from values or the release
name: a release "1234" or a pool "0x1f" would otherwise reach Kubernetes as a number.
*/}}
{{- define "medeval.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | quote }}
{{ include "medeval.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service | quote }}
{{- end -}}

{{- define "medeval.selectorLabels" -}}
app.kubernetes.io/name: {{ include "medeval.name" . | quote }}
app.kubernetes.io/instance: {{ .Release.Name | quote }}
{{- end -}}

{{/*
(list ROOT COMPONENT POOL_NAME): the labels that select one component's pods (the
pool's, for workers; POOL_NAME "" otherwise).
*/}}
{{- define "medeval.componentSelector" -}}
{{- $root := index . 0 -}}
{{ include "medeval.selectorLabels" $root }}
app.kubernetes.io/component: {{ index . 1 }}
{{- with index . 2 }}
medeval.io/pool: {{ . | quote }}
{{- end }}
{{- end -}}

{{/*
(list ROOT COMPONENT POOL_NAME EXTRA): a pod template's labels: the user's podLabels
(EXTRA) and the selector labels, which win over podLabels of the same key.
*/}}
{{- define "medeval.podLabels" -}}
{{- $selector := include "medeval.componentSelector" (list (index . 0) (index . 1) (index . 2)) | fromYaml -}}
{{- toYaml (merge $selector (deepCopy (default dict (index . 3)))) -}}
{{- end -}}

{{/*
(list ROOT COMPONENT POOL_NAME SETTINGS): the scheduling fields of a pod spec from
SETTINGS (nodeSelector, tolerations, affinity, topologySpreadConstraints,
priorityClassName). A spread constraint without a labelSelector gets this
component's (or pool's) pods.
*/}}
{{- define "medeval.scheduling" -}}
{{- $s := index . 3 -}}
{{- with $s.priorityClassName }}
priorityClassName: {{ . | quote }}
{{- end }}
{{- with $s.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $s.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $s.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $s.topologySpreadConstraints }}
{{- $selector := include "medeval.componentSelector" (list (index $ 0) (index $ 1) (index $ 2)) | fromYaml }}
topologySpreadConstraints:
{{- range . }}
{{- $c := deepCopy . }}
{{- if not (hasKey $c "labelSelector") }}
{{- $_ := set $c "labelSelector" (dict "matchLabels" $selector) }}
{{- end }}
  - {{ toYaml $c | nindent 4 | trim }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The service account settings of every medeval pod. */}}
{{- define "medeval.podServiceAccount" -}}
serviceAccountName: {{ include "medeval.serviceAccountName" . | quote }}
automountServiceAccountToken: {{ .Values.serviceAccount.automountToken }}
{{- end -}}

{{/* (list POD_SECRETS ROOT): imagePullSecrets of a pod, the chart's and its own. */}}
{{- define "medeval.imagePullSecrets" -}}
{{- $all := concat ((index . 1).Values.imagePullSecrets | default list) (index . 0 | default list) -}}
{{- with $all }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* An image reference from {repository, tag}; the tag defaults to the chart's appVersion. */}}
{{- define "medeval.image" -}}
{{- $img := index . 0 -}}
{{- $root := index . 1 -}}
{{- printf "%s:%s" $img.repository (default $root.Chart.AppVersion $img.tag) -}}
{{- end -}}

{{/*
(list ROOT POOL): the pool's entry of the models file (docs/models-file.md). Its
hash is the checksum on the pool's pods, so they restart when their own entry
changes and not when another pool's does.
*/}}
{{- define "medeval.modelEntry" -}}
{{- $pool := index . 1 -}}
{{- $m := dict "name" $pool.model -}}
{{- if eq (toString $pool.concurrency) "auto" -}}
{{- $_ := set $m "concurrency" "auto" -}}
{{- with $pool.maxConcurrency }}{{- $_ := set $m "max_concurrency" (int .) -}}{{- end -}}
{{- else -}}
{{- $_ := set $m "concurrency" (int $pool.concurrency) -}}
{{- end -}}
{{- if $pool.serve -}}
{{- $serve := dict "command" $pool.serve.command -}}
{{- if hasKey $pool.serve "startupTimeout" }}{{- $_ := set $serve "startup_timeout" $pool.serve.startupTimeout -}}{{- end -}}
{{- if hasKey $pool.serve "stopGrace" }}{{- $_ := set $serve "stop_grace" $pool.serve.stopGrace -}}{{- end -}}
{{- $_ := set $m "serve" $serve -}}
{{- with $pool.serve.servedModelName }}{{- $_ := set $m "served_model_name" . -}}{{- end -}}
{{- else -}}
{{- $_ := set $m "base_url" $pool.api.baseUrl -}}
{{- if $pool.api.apiKeySecret }}{{- $_ := set $m "api_key_env" "MEDEVAL_MODEL_API_KEY" -}}{{- end -}}
{{- with $pool.api.servedModelName }}{{- $_ := set $m "served_model_name" . -}}{{- end -}}
{{- if $pool.api.adaptiveConcurrency }}{{- $_ := set $m "adaptive_concurrency" true -}}{{- end -}}
{{- $limits := dict -}}
{{- with $pool.api.rpm }}{{- $_ := set $limits "rpm" . -}}{{- end -}}
{{- with $pool.api.tpm }}{{- $_ := set $limits "tpm" . -}}{{- end -}}
{{- if $limits }}{{- $_ := set $m "limits" $limits -}}{{- end -}}
{{- end -}}
{{- with $pool.request }}{{- $_ := set $m "request" . -}}{{- end -}}
{{- toYaml $m -}}
{{- end -}}

{{/*
What the values schema cannot say: refused here, at render time, with the key and
the reason (helm install stops before it creates anything).
*/}}
{{- define "medeval.validate" -}}
{{- $full := include "medeval.fullname" . -}}
{{- if not (regexMatch "^[a-z]" $full) -}}
{{- fail (printf "object names start with %q (the release name, nameOverride or fullnameOverride), and a Service's name must start with a letter: choose a release name that does, or set fullnameOverride" $full) -}}
{{- end -}}
{{- $names := dict -}}
{{- $models := dict -}}
{{- range $i, $p := .Values.workerPools -}}
{{- if eq $p.name "coordinator" -}}
{{- fail (printf "workerPools[%d].name: %q is reserved (the coordinator's objects have that name); call the pool something else" $i $p.name) -}}
{{- end -}}
{{- if hasKey $names $p.name -}}
{{- fail (printf "workerPools[%d].name: %q is also the name of workerPools[%d]; pool names must be unique (they name the Deployments)" $i $p.name (get $names $p.name)) -}}
{{- end -}}
{{- if hasKey $models $p.model -}}
{{- fail (printf "workerPools[%d].model: %q is also the model of workerPools[%d]; give each model one pool (add replicas to scale it)" $i $p.model (get $models $p.model)) -}}
{{- end -}}
{{- $_ := set $names $p.name $i -}}
{{- $_ := set $models $p.model $i -}}
{{- end -}}
{{- if .Values.submit.enabled -}}
{{- if not .Values.workerPools -}}
{{- fail "submit.enabled: there are no workerPools to evaluate; add a pool or set submit.enabled=false" -}}
{{- end -}}
{{- range $i, $m := .Values.submit.models -}}
{{- if not (hasKey $models $m) -}}
{{- fail (printf "submit.models[%d]: %q is not the model of any pool (models: %s)" $i $m (keys $models | sortAlpha | join ", ")) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $budgets := list (list "coordinator.podDisruptionBudget" .Values.coordinator.podDisruptionBudget) (list "workerDefaults.podDisruptionBudget" .Values.workerDefaults.podDisruptionBudget) -}}
{{- range $i, $p := .Values.workerPools -}}
{{- $budgets = append $budgets (list (printf "workerPools[%d].podDisruptionBudget" $i) $p.podDisruptionBudget) -}}
{{- end -}}
{{- range $budgets -}}
{{- $b := default dict (index . 1) -}}
{{- if and (hasKey $b "minAvailable") (hasKey $b "maxUnavailable") -}}
{{- fail (printf "%s: give minAvailable or maxUnavailable, not both" (index . 0)) -}}
{{- end -}}
{{- end -}}
{{- $c := .Values.coordinator -}}
{{- include "medeval.checkExtraVolumes" (list "coordinator" $c (list "state" "tmp" "token" "tls") (list "/var/lib/medeval" "/tmp" "/etc/medeval/token" "/etc/medeval/tls")) -}}
{{- $workerVolumes := list "models" "token" "tls" "client-tls" "scratch" "dshm" "model" -}}
{{- $workerMounts := list "/etc/medeval/models" "/etc/medeval/token" "/etc/medeval/tls" "/etc/medeval/client-tls" "/tmp" "/scratch" "/dev/shm" -}}
{{- include "medeval.checkExtraVolumes" (list "workerDefaults" .Values.workerDefaults $workerVolumes $workerMounts) -}}
{{- range $i, $p := .Values.workerPools -}}
{{- $mounts := $workerMounts -}}
{{- with $p.serve }}{{ with .modelMountPath }}{{ $mounts = append $mounts . }}{{ end }}{{ end -}}
{{- $own := pick $p "extraVolumes" "extraVolumeMounts" -}}
{{- include "medeval.checkExtraVolumes" (list (printf "workerPools[%d]" $i) $own $workerVolumes $mounts) -}}
{{- if and $p.serve (not (hasKey $p "extraVolumeMounts")) -}}
{{- include "medeval.checkExtraVolumes" (list "workerDefaults" (pick $.Values.workerDefaults "extraVolumeMounts") $workerVolumes $mounts) -}}
{{- end -}}
{{- end -}}
{{- if .Values.submit.enabled -}}
{{- include "medeval.checkExtraVolumes" (list "submit" .Values.submit (list "models" "token" "tls" "client-tls" "tmp" "data") (list "/etc/medeval/models" "/etc/medeval/token" "/etc/medeval/tls" "/etc/medeval/client-tls" "/tmp" "/data")) -}}
{{- end -}}
{{- if eq (int .Values.coordinator.port) (int .Values.coordinator.metricsPort) -}}
{{- fail (printf "coordinator.metricsPort: %d is also coordinator.port; the gRPC and metrics ports must differ" (int .Values.coordinator.port)) -}}
{{- end -}}
{{- end -}}

{{/*
(list KEY SETTINGS VOLUME_NAMES MOUNT_PATHS): refuses SETTINGS' extraVolumes and
extraVolumeMounts that reuse a volume name or mount path of the chart's own (the
API server refuses such a pod only once the Deployment tries to create it).
*/}}
{{- define "medeval.checkExtraVolumes" -}}
{{- $key := index . 0 -}}
{{- $s := index . 1 -}}
{{- range $i, $v := $s.extraVolumes -}}
{{- if has $v.name (index $ 2) -}}
{{- fail (printf "%s.extraVolumes[%d].name: %q is a volume of the chart (%s); choose another name" $key $i $v.name (join ", " (index $ 2))) -}}
{{- end -}}
{{- end -}}
{{- range $i, $m := $s.extraVolumeMounts -}}
{{- if has (trimSuffix "/" $m.mountPath) (index $ 3) -}}
{{- fail (printf "%s.extraVolumeMounts[%d].mountPath: %q is a mount of the chart (%s); choose another path" $key $i $m.mountPath (join ", " (index $ 3))) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
Flags that let a client (worker or submit Job) reach the coordinator through the
token and TLS settings; the files come from the volumes in medeval.clientVolumes.
*/}}
{{- define "medeval.clientSecurityArgs" -}}
{{- with .Values.security }}
{{- with .tls.serverName }}
- {{ printf "--tls-server-name=%s" . | quote }}
{{- end }}
{{- if .token.existingSecret }}
- {{ printf "--token-file=/etc/medeval/token/%s" .token.key | quote }}
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
    name: {{ printf "%s-models" (include "medeval.fullname" .) | quote }}
{{- with .Values.security }}
{{- if .token.existingSecret }}
- name: token
  secret:
    secretName: {{ .token.existingSecret | quote }}
    defaultMode: 0440
{{- end }}
{{- if .tls.existingSecret }}
- name: tls
  secret:
    secretName: {{ .tls.existingSecret | quote }}
    items:
      - key: ca.crt
        path: ca.crt
{{- if .tls.mutual }}
- name: client-tls
  secret:
    secretName: {{ required "security.tls.clientSecret is required with security.tls.mutual" .tls.clientSecret | quote }}
    defaultMode: 0440
{{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{/* (SETTINGS): env entries from extraEnv (and a pool's older `env`). */}}
{{- define "medeval.extraEnv" -}}
{{- with concat (.extraEnv | default list) (.env | default list) }}
{{- toYaml . }}
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
