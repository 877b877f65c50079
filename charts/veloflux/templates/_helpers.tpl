{{/* Names and labels shared by every template. */}}

{{- define "veloflux.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The prefix of every object name: the release name, plus the chart name unless the release name contains it. */}}
{{- define "veloflux.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Labels on every object; the uninstall test finds leftovers by app.kubernetes.io/instance. */}}
{{- define "veloflux.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "veloflux.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: veloflux
{{- end -}}

{{/* Selector labels of one component: include with (dict "ctx" $ "component" "proxy"). */}}
{{- define "veloflux.selectorLabels" -}}
app.kubernetes.io/name: {{ include "veloflux.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "veloflux.operatorServiceAccount" -}}
{{- default (printf "%s-operator" (include "veloflux.fullname" .)) .Values.operator.serviceAccount.name -}}
{{- end -}}

{{/* The Secret (key "token") holding the proxies' admin token, in the release namespace and every sidecar namespace. */}}
{{- define "veloflux.adminTokenSecret" -}}
{{- if .Values.adminToken.existingSecret -}}
{{- .Values.adminToken.existingSecret -}}
{{- else -}}
{{- default (printf "%s-admin-token" (include "veloflux.fullname" .)) .Values.adminToken.secretName -}}
{{- end -}}
{{- end -}}

{{- define "veloflux.bootstrapConfigMap" -}}
{{- printf "%s-proxy-bootstrap" (include "veloflux.fullname" .) -}}
{{- end -}}

{{/* repository@digest when a digest is set (immutable: what was tested is what runs), else repository:tag. */}}
{{- define "veloflux.image" -}}
{{- if .image.digest -}}
{{- printf "%s@%s" .image.repository .image.digest -}}
{{- else -}}
{{- printf "%s:%s" .image.repository (default .ctx.Chart.AppVersion .image.tag) -}}
{{- end -}}
{{- end -}}

{{/* Where the proxy reads its admin token: the Secret mounted as a file (not an env var, which child processes
     and `kubectl describe` would show). */}}
{{- define "veloflux.tokenFile" -}}/etc/veloflux/admin/token{{- end -}}

{{/* The proxy's bootstrap config: listeners and admin token only, no pools. The operator pushes the pools
     (PUT /api/v1/config) once a FailoverPool selects the pod; until then every request answers 404. */}}
{{- define "veloflux.bootstrapConfig" -}}
# Bootstrap config of a VeloFlux proxy managed by the operator: no pools until the operator pushes them, and
# (bootstrap: true) /readyz 503 until then, so the pod enters its Service only with its config (SPEC 6 warm-up).
bootstrap: true
listen: ":{{ .Values.proxy.port }}"
admin:
  listen: ":{{ .Values.proxy.adminPort }}"
  token_file: {{ include "veloflux.tokenFile" . }}
{{- with .Values.proxy.region }}
region: {{ . | quote }}
{{- end }}
{{- end -}}

{{/* Container and pod security settings shared by the operator and the proxy (the images run as uid 65532). */}}
{{- define "veloflux.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "veloflux.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
privileged: false
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* The admin token the chart creates: the live Secret's (lookup, kept across upgrades) else 48 random characters,
     computed once per render and memoized so the Secret and the proxies' checksum annotation see the same value.
     With adminToken.existingSecret: the live data of that Secret when helm can read it, else its name. */}}
{{- define "veloflux.adminTokenValue" -}}
{{- if not (hasKey .Values "__adminTokenValue") -}}
{{- $name := include "veloflux.adminTokenSecret" . -}}
{{- $token := "" -}}
{{- if .Values.adminToken.existingSecret -}}
{{- $current := lookup "v1" "Secret" .Release.Namespace $name -}}
{{- $token = ternary (toJson $current.data) $name (and (not (empty $current)) (hasKey $current "data")) -}}
{{- else -}}
{{- $namespaces := list .Release.Namespace -}}
{{- range .Values.sidecar.namespaces }}{{ if not (has . $namespaces) }}{{ $namespaces = append $namespaces . }}{{ end }}{{ end -}}
{{- range $namespaces -}}
{{- $current := lookup "v1" "Secret" . $name -}}
{{- if and (not $token) $current $current.data $current.data.token -}}
{{- $token = $current.data.token | b64dec -}}
{{- end -}}
{{- end -}}
{{- if not $token -}}
{{- $token = randAlphaNum 48 -}}
{{- end -}}
{{- end -}}
{{- $_ := set .Values "__adminTokenValue" $token -}}
{{- end -}}
{{- get .Values "__adminTokenValue" -}}
{{- end -}}
