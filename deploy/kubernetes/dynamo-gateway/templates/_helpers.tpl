{{/* Names and labels, as `helm create` makes them. */}}
{{- define "dynamo-gateway.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "dynamo-gateway.fullname" -}}
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

{{/* A suffixed name that stays within 63 characters. */}}
{{- define "dynamo-gateway.suffixed" -}}
{{- $root := index . 0 }}
{{- $suffix := index . 1 }}
{{- printf "%s-%s" (include "dynamo-gateway.fullname" $root | trunc (int (sub 62 (len $suffix))) | trimSuffix "-") $suffix }}
{{- end }}

{{- define "dynamo-gateway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "dynamo-gateway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "dynamo-gateway.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "dynamo-gateway.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: gateway
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "dynamo-gateway.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "dynamo-gateway.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "dynamo-gateway.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* A file value: its text as given, or a mapping written as YAML. */}}
{{- define "dynamo-gateway.fileText" -}}
{{- if kindIs "string" . }}{{ . }}{{ else }}{{ toYaml . }}{{ end }}
{{- end }}

{{/* Where the chart mounts what the gateway reads. */}}
{{- define "dynamo-gateway.paths" -}}
config: /etc/dynamo-gateway/config/gateway.yaml
tables: /etc/dynamo-gateway/tables/tables.yaml
policy: /etc/dynamo-gateway/policy/policy.yaml
regions: /etc/dynamo-gateway/regions/regions.yaml
tokens: /etc/dynamo-gateway/tokens/tokens.yaml
jwks: /etc/dynamo-gateway/jwks/jwks.json
tlsDir: /etc/dynamo-gateway/tls
clientCADir: /etc/dynamo-gateway/client-ca
probeCertDir: /etc/dynamo-gateway/probe-tls
{{- end }}

{{- define "dynamo-gateway.tablesEnabled" -}}
{{- if or .Values.tables.file .Values.tables.existingConfigMap }}true{{ end }}
{{- end }}
{{- define "dynamo-gateway.policyEnabled" -}}
{{- if or .Values.policy.file .Values.policy.existingConfigMap }}true{{ end }}
{{- end }}
{{- define "dynamo-gateway.regionsEnabled" -}}
{{- if or .Values.regions.file .Values.regions.existingConfigMap }}true{{ end }}
{{- end }}
{{- define "dynamo-gateway.tokensEnabled" -}}
{{- if or .Values.auth.tokens.file .Values.auth.tokens.existingSecret }}true{{ end }}
{{- end }}
{{- define "dynamo-gateway.jwtEnabled" -}}
{{- if or .Values.auth.jwt.jwks .Values.auth.jwt.existingConfigMap }}true{{ end }}
{{- end }}
{{- define "dynamo-gateway.tlsEnabled" -}}
{{- if .Values.tls.secretName }}true{{ end }}
{{- end }}
{{- define "dynamo-gateway.mtlsEnabled" -}}
{{- if .Values.tls.clientCA.secretName }}true{{ end }}
{{- end }}
{{- define "dynamo-gateway.metricsEnabled" -}}
{{- if gt (int .Values.ports.metrics) 0 }}true{{ end }}
{{- end }}

{{/* The shutdown settings, with the gateway's defaults (config.py) when left out. */}}
{{- define "dynamo-gateway.gracePeriodS" -}}
{{- $value := .Values.config.grace_period_s }}
{{- if kindIs "invalid" $value }}10{{ else }}{{ $value }}{{ end }}
{{- end }}
{{- define "dynamo-gateway.shutdownDelayS" -}}
{{- $value := .Values.config.shutdown_delay_s }}
{{- if kindIs "invalid" $value }}1{{ else }}{{ $value }}{{ end }}
{{- end }}

{{/* Long enough for the preStop sleep, the shutdown delay and the grace period, with a margin. */}}
{{- define "dynamo-gateway.terminationGracePeriodSeconds" -}}
{{- $needed := add (int .Values.lifecycle.preStopSleepSeconds) (ceil (include "dynamo-gateway.shutdownDelayS" .)) (ceil (include "dynamo-gateway.gracePeriodS" .)) }}
{{- $given := .Values.lifecycle.terminationGracePeriodSeconds }}
{{- if kindIs "invalid" $given }}
{{- add $needed (int .Values.lifecycle.terminationMarginSeconds) }}
{{- else if lt (int $given) (int $needed) }}
{{- fail (printf "lifecycle.terminationGracePeriodSeconds (%v) is shorter than preStopSleepSeconds + shutdown_delay_s + grace_period_s (%v): Kubernetes would kill calls in flight" $given $needed) }}
{{- else }}
{{- $given }}
{{- end }}
{{- end }}

{{/* Settings the chart sets itself (flags, mounted files, secrets): refused in `config`. */}}
{{- define "dynamo-gateway.ownedSettings" -}}
host: listenAddress
port: ports.grpc
metrics_port: ports.metrics
tables_file: tables.file or tables.existingConfigMap
policy_file: policy.file or policy.existingConfigMap
regions_file: regions.file or regions.existingConfigMap
auth_tokens_file: auth.tokens
jwt_jwks_file: auth.jwt.jwks or auth.jwt.existingConfigMap
jwt_issuer: auth.jwt.issuer
jwt_audiences: auth.jwt.audiences
tls_cert_file: tls.secretName
tls_key_file: tls.secretName
tls_client_ca_file: tls.clientCA.secretName
key_hash_salt: secretConfig.key_hash_salt
aws_role_external_id: secretConfig.aws_role_external_id
config: (the chart writes the config file)
{{- end }}

{{/* The --config file: `config` less empty values, plus the JWT claims. */}}
{{- define "dynamo-gateway.configFile" -}}
{{- $owned := include "dynamo-gateway.ownedSettings" . | fromYaml }}
{{- $settings := dict }}
{{- range $name, $value := .Values.config }}
{{- if hasKey $owned $name }}
{{- fail (printf "config.%s is set by the chart: use %s" $name (get $owned $name)) }}
{{- end }}
{{- if not (or (kindIs "invalid" $value) (and (kindIs "string" $value) (eq $value ""))) }}
{{- if not (has $name (list "grace_period_s" "shutdown_delay_s")) }}
{{- $_ := set $settings $name $value }}
{{- end }}
{{- end }}
{{- end }}
{{- if include "dynamo-gateway.jwtEnabled" . }}
{{- if not (and .Values.auth.jwt.issuer .Values.auth.jwt.audiences) }}
{{- fail "auth.jwt needs issuer and audiences with a JWKS: a token minted for another service must not pass" }}
{{- end }}
{{- $_ := set $settings "jwt_issuer" .Values.auth.jwt.issuer }}
{{- $_ := set $settings "jwt_audiences" (join "," .Values.auth.jwt.audiences) }}
{{- end }}
{{- if $settings }}
{{- toYaml $settings }}
{{- else }}
{}
{{- end }}
{{- end }}

{{/* The flags: what the chart wires (ports, mounted files, shutdown), then extraArgs. */}}
{{- define "dynamo-gateway.args" -}}
{{- $paths := include "dynamo-gateway.paths" . | fromYaml }}
- --config
- {{ $paths.config }}
- --host
- {{ .Values.listenAddress | quote }}
- --port
- {{ .Values.ports.grpc | quote }}
- --metrics-port
- {{ ternary .Values.ports.metrics -1 (gt (int .Values.ports.metrics) 0) | quote }}
- --grace-period-s
- {{ include "dynamo-gateway.gracePeriodS" . | quote }}
- --shutdown-delay-s
- {{ include "dynamo-gateway.shutdownDelayS" . | quote }}
{{- if include "dynamo-gateway.tablesEnabled" . }}
- --tables-file
- {{ $paths.tables }}
{{- end }}
{{- if include "dynamo-gateway.policyEnabled" . }}
- --policy-file
- {{ $paths.policy }}
{{- end }}
{{- if include "dynamo-gateway.regionsEnabled" . }}
- --regions-file
- {{ $paths.regions }}
{{- end }}
{{- if include "dynamo-gateway.tokensEnabled" . }}
- --auth-tokens-file
- {{ $paths.tokens }}
{{- end }}
{{- if include "dynamo-gateway.jwtEnabled" . }}
- --jwt-jwks-file
- {{ $paths.jwks }}
{{- end }}
{{- if include "dynamo-gateway.tlsEnabled" . }}
- --tls-cert-file
- {{ $paths.tlsDir }}/tls.crt
- --tls-key-file
- {{ $paths.tlsDir }}/tls.key
{{- end }}
{{- if include "dynamo-gateway.mtlsEnabled" . }}
{{- if not (include "dynamo-gateway.tlsEnabled" .) }}
{{- fail "tls.clientCA (mTLS) needs tls.secretName" }}
{{- end }}
- --tls-client-ca-file
- {{ $paths.clientCADir }}/{{ .Values.tls.clientCA.key }}
{{- end }}
{{- range .Values.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end }}

{{/*
A probe. Without TLS: the kubelet's native gRPC probe. With TLS (which the kubelet's gRPC probe
cannot speak): grpc-health-probe in the container, over TLS to the pod's own port, presenting a
client certificate when mTLS is on. The probe checks the local process, so the server's name is
not verified (-tls-no-verify).
*/}}
{{- define "dynamo-gateway.probe" -}}
{{- $root := index . 0 }}
{{- $probe := index . 1 }}
{{- $service := default "" $probe.service }}
{{- $paths := include "dynamo-gateway.paths" $root | fromYaml }}
{{- if include "dynamo-gateway.tlsEnabled" $root }}
exec:
  command:
    - grpc-health-probe
    - -addr=127.0.0.1:{{ $root.Values.ports.grpc }}
    - -service={{ $service }}
    - -connect-timeout={{ $probe.timeoutSeconds }}s
    - -rpc-timeout={{ $probe.timeoutSeconds }}s
    - -tls
    - -tls-no-verify
    {{- if include "dynamo-gateway.mtlsEnabled" $root }}
    {{- $dir := ternary $paths.probeCertDir $paths.tlsDir (not (empty $root.Values.tls.probeCertificateSecretName)) }}
    - -tls-client-cert={{ $dir }}/tls.crt
    - -tls-client-key={{ $dir }}/tls.key
    {{- end }}
{{- else }}
grpc:
  port: {{ $root.Values.ports.grpc }}
  service: {{ $service | quote }}
{{- end }}
{{- range $key := list "periodSeconds" "timeoutSeconds" "failureThreshold" "successThreshold" "initialDelaySeconds" }}
{{- if hasKey $probe $key }}
{{ $key }}: {{ get $probe $key }}
{{- end }}
{{- end }}
{{- end }}
