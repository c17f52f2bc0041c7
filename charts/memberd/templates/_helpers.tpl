{{/*
Names and labels
*/}}

{{- define "memberd.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's base name; each service's objects are <fullname>-<service>. Kept to 40
characters so that suffix still fits Kubernetes' 63. */}}
{{- define "memberd.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The name of one component's objects: <fullname>-<component>; the single process is just
<fullname>. Takes (dict "root" $ "component" "ledger"). */}}
{{- define "memberd.componentName" -}}
{{- if eq .component "all" -}}
{{- include "memberd.fullname" .root -}}
{{- else -}}
{{- printf "%s-%s" (include "memberd.fullname" .root) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "memberd.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* What selects every pod of this release. */}}
{{- define "memberd.selectorLabels" -}}
app.kubernetes.io/name: {{ include "memberd.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "memberd.labels" -}}
helm.sh/chart: {{ include "memberd.chart" . }}
{{ include "memberd.selectorLabels" . }}
app.kubernetes.io/version: {{ include "memberd.imageTag" . | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: memberd
{{- end -}}

{{/* Takes (dict "root" $ "component" "ledger"). */}}
{{- define "memberd.componentSelectorLabels" -}}
{{ include "memberd.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "memberd.componentLabels" -}}
{{ include "memberd.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "memberd.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "memberd.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name: name an existing ServiceAccount when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
Images
*/}}

{{- define "memberd.imageTag" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion | toString -}}
{{- if eq $tag "latest" -}}
{{- fail "image.tag: `latest` is refused; name the release (e.g. 0.1.0) or set image.digest" -}}
{{- end -}}
{{- $tag -}}
{{- end -}}

{{- define "memberd.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (include "memberd.imageTag" .) -}}
{{- end -}}
{{- end -}}

{{/*
Who is who in split mode. callees: whom each service calls over gRPC (port 50051), which sets
its *_endpoint settings and its egress and the callee's ingress NetworkPolicies. The data tier
each service uses sets its config and egress.
*/}}
{{- define "memberd.topology" -}}
{
  "targets": ["gateway", "identity", "ledger", "member", "campaign"],
  "callees": {
    "gateway": ["identity", "ledger", "member", "campaign"],
    "identity": [],
    "ledger": ["identity"],
    "member": ["identity", "ledger"],
    "campaign": ["identity", "member", "ledger"]
  },
  "usesScylla": ["identity", "ledger", "member", "campaign"],
  "usesNats": ["identity", "ledger", "member", "campaign"],
  "usesRedis": ["gateway"],
  "needsMasterKey": ["member", "all"],
  "runsIdentity": ["identity", "all"],
  "grpcForPartners": ["ledger", "member", "campaign", "all"]
}
{{- end -}}

{{/* "true" when component .component opens a CQL session: the services that keep data,
and in two regions (config.region.name set) the gateway too, which renews the region's lease
and reads the homes in the control keyspace (decision 0019). */}}
{{- define "memberd.usesScylla" -}}
{{- $topology := include "memberd.topology" .root | fromJson -}}
{{- $inRegions := ((.root.Values.config | default dict).region | default dict).name -}}
{{- if or (has .component $topology.usesScylla) (and (eq .component "gateway") $inRegions) -}}true{{- end -}}
{{- end -}}

{{/* The enabled components: the five services in split mode, "all" in single mode. */}}
{{- define "memberd.components" -}}
{{- $components := list -}}
{{- if eq .Values.mode "single" -}}
{{- $components = list "all" -}}
{{- else -}}
{{- range $t := (include "memberd.topology" . | fromJson).targets -}}
{{- if (index $.Values $t).enabled -}}
{{- $components = append $components $t -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toJson $components -}}
{{- end -}}

{{/* A component's values block: .Values.<service>, or .Values.single for "all". */}}
{{- define "memberd.componentValues" -}}
{{- if eq .component "all" -}}
{{- toJson .root.Values.single -}}
{{- else -}}
{{- toJson (index .root.Values .component) -}}
{{- end -}}
{{- end -}}

{{/* The Service that serves the REST API: the gateway's, or the single process's. */}}
{{- define "memberd.apiServiceName" -}}
{{- if eq .Values.mode "single" -}}
{{- include "memberd.componentName" (dict "root" . "component" "all") -}}
{{- else -}}
{{- include "memberd.componentName" (dict "root" . "component" "gateway") -}}
{{- end -}}
{{- end -}}

{{/* "true" when the REST API is served by this release: single mode, or the gateway enabled. */}}
{{- define "memberd.apiEnabled" -}}
{{- if or (eq .Values.mode "single") .Values.gateway.enabled -}}true{{- end -}}
{{- end -}}

{{- define "memberd.apiComponent" -}}
{{- if eq .Values.mode "single" -}}all{{- else -}}gateway{{- end -}}
{{- end -}}

{{/*
memberd.toml
*/}}

{{/* Deep merge of .src into .dst (both dicts; .dst is changed). Unlike sprig's
mergeOverwrite, a false, 0 or "" in .src does override, and a null removes the key. */}}
{{- define "memberd.deepMerge" -}}
{{- $dst := .dst -}}
{{- range $key, $value := .src -}}
{{- if kindIs "invalid" $value -}}
{{- $_ := unset $dst $key -}}
{{- else if and (kindIs "map" $value) (kindIs "map" (get $dst $key)) -}}
{{- include "memberd.deepMerge" (dict "dst" (get $dst $key) "src" $value) -}}
{{- else -}}
{{- $_ := set $dst $key (deepCopy $value) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The settings of one component as JSON: what the chart derives from the values, then the
global `config`, then the component's own `config`. Takes (dict "root" $ "component" c). */}}
{{- define "memberd.configDict" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
{{- $c := .component -}}
{{- $topology := include "memberd.topology" $root | fromJson -}}
{{- $config := dict -}}
{{- $telemetry := dict "json" $v.telemetry.json "service_name" (ternary "memberd" (printf "memberd-%s" $c) (eq $c "all")) -}}
{{- with $v.telemetry.filter }}{{ $_ := set $telemetry "filter" . }}{{ end -}}
{{- with $v.telemetry.otlpEndpoint }}{{ $_ := set $telemetry "otlp_endpoint" . }}{{ end -}}
{{- $_ := set $config "telemetry" $telemetry -}}
{{- if ne $c "all" -}}
{{- /* Single mode keeps memberd's defaults: the embedded store and the embedded bus. The
gateway keeps no data, so it gets no [scylla] in one region: with storage = "scylla" it would
open a CQL session it never uses (memberd.usesScylla). */ -}}
{{- if include "memberd.usesScylla" (dict "root" $root "component" $c) -}}
{{- $scylla := dict "nodes" $v.scylla.nodes "local_datacenter" $v.scylla.localDatacenter "replication" $v.scylla.replication "keyspace_prefix" $v.scylla.keyspacePrefix "flavour" $v.scylla.flavour -}}
{{- with $v.scylla.relayDatacenter }}{{ $_ := set $scylla "relay_datacenter" . }}{{ end -}}
{{- with $v.scylla.controlReplication }}{{ $_ := set $scylla "control_replication" . }}{{ end -}}
{{- $_ := set $config "storage" "scylla" -}}
{{- $_ := set $config "scylla" $scylla -}}
{{- end -}}
{{- if has $c $topology.usesNats -}}
{{- $nats := dict "url" $v.nats.url -}}
{{- if $v.nats.credentials.existingSecret -}}
{{- $_ := set $nats "credentials_file" "/etc/memberd/nats/nats.creds" -}}
{{- end -}}
{{- $_ := set $config "events" (dict "bus" "nats" "nats" $nats) -}}
{{- end -}}
{{- if and (has $c $topology.usesRedis) $v.redis.url -}}
{{- $_ := set $config "gateway" (dict "rate_limits" (dict "redis_url" $v.redis.url)) -}}
{{- end -}}
{{- range $callee := get $topology.callees $c -}}
{{- /* The callee's headless Service: the caller resolves it to every ready replica and
balances its calls over them (service.yaml). */ -}}
{{- $_ := set $config (printf "%s_endpoint" $callee) (printf "http://%s-grpc:50051" (include "memberd.componentName" (dict "root" $root "component" $callee))) -}}
{{- end -}}
{{- end -}}
{{- include "memberd.deepMerge" (dict "dst" $config "src" (deepCopy $v.config)) -}}
{{- $own := (include "memberd.componentValues" . | fromJson).config -}}
{{- include "memberd.deepMerge" (dict "dst" $config "src" (deepCopy ($own | default dict))) -}}
{{- /* Owned by the chart: the container's environment sets them (see the Deployment). */ -}}
{{- range $owned := list "target" "http_addr" "grpc_addr" "data_dir" -}}
{{- $_ := unset $config $owned -}}
{{- end -}}
{{- toJson $config -}}
{{- end -}}

{{/* The settings of the migrate Job: only what `memberd migrate` reads. */}}
{{- define "memberd.migrateConfigDict" -}}
{{- $ledger := include "memberd.configDict" (dict "root" . "component" "ledger") | fromJson -}}
{{- $config := dict "storage" "scylla" "scylla" $ledger.scylla "telemetry" (dict "json" .Values.telemetry.json "service_name" "memberd-migrate") -}}
{{- toJson $config -}}
{{- end -}}

{{/*
TOML rendering. Helm's toToml writes every number as a float (3 becomes 3.0, 10000000
becomes 1e+07), which memberd's integer settings refuse; these helpers write integral numbers
as integers. Scalars come before sub-tables within each table, as TOML requires.
*/}}

{{- define "memberd.toml.key" -}}
{{- if regexMatch "^[A-Za-z0-9_-]+$" . -}}{{ . }}{{- else -}}{{ toJson . }}{{- end -}}
{{- end -}}

{{- define "memberd.toml.value" -}}
{{- $v := . -}}
{{- if kindIs "string" $v -}}
{{- /* JSON's escapes (\" \\ \n \uXXXX) are TOML basic-string escapes too. */ -}}
{{- toJson $v -}}
{{- else if kindIs "bool" $v -}}
{{- ternary "true" "false" $v -}}
{{- else if or (kindIs "float64" $v) (kindIs "float32" $v) -}}
{{- if eq (float64 (int64 $v)) (float64 $v) -}}{{- int64 $v -}}{{- else -}}{{- $v -}}{{- end -}}
{{- else if or (kindIs "int" $v) (kindIs "int64" $v) (kindIs "int32" $v) (kindIs "uint64" $v) -}}
{{- $v -}}
{{- else if kindIs "slice" $v -}}
[{{- range $i, $item := $v -}}{{- if $i }}, {{ end -}}{{- include "memberd.toml.value" $item -}}{{- end -}}]
{{- else if kindIs "map" $v -}}
{ {{- range $i, $k := keys $v | sortAlpha -}}{{- if $i }},{{ end }} {{ include "memberd.toml.key" $k }} = {{ include "memberd.toml.value" (get $v $k) -}}{{- end }} }
{{- else -}}
{{- fail (printf "memberd.toml: cannot write a value of kind %s" (kindOf $v)) -}}
{{- end -}}
{{- end -}}

{{/* Takes (dict "path" "a.b" "table" dict). */}}
{{- define "memberd.toml.table" -}}
{{- $path := .path -}}
{{- $table := .table -}}
{{- range $k := keys $table | sortAlpha -}}
{{- $v := get $table $k -}}
{{- if and (not (kindIs "map" $v)) (not (kindIs "invalid" $v)) }}
{{ include "memberd.toml.key" $k }} = {{ include "memberd.toml.value" $v }}
{{- end -}}
{{- end -}}
{{- range $k := keys $table | sortAlpha -}}
{{- $v := get $table $k -}}
{{- if kindIs "map" $v -}}
{{- $sub := include "memberd.toml.key" $k -}}
{{- if $path }}{{ $sub = printf "%s.%s" $path $sub }}{{ end }}

[{{ $sub }}]
{{- include "memberd.toml.table" (dict "path" $sub "table" $v) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "memberd.toml" -}}
# memberd.toml, rendered by the memberd Helm chart. MEMBERD_* variables in the container's
# environment override it; see the Configuration table of memberd's README.
{{- include "memberd.toml.table" (dict "path" "" "table" .) }}
{{ end -}}

{{/*
Pods
*/}}

{{/* Environment from existing Secrets. Takes (dict "root" $ "component" c). */}}
{{- define "memberd.secretEnv" -}}
{{- $v := .root.Values -}}
{{- $c := .component -}}
{{- $topology := include "memberd.topology" .root | fromJson -}}
{{- if and (has $c $topology.targets) $v.secrets.serviceCredential.existingSecret }}
- name: MEMBERD_IDENTITY__SERVICE_CREDENTIAL
  valueFrom:
    secretKeyRef:
      name: {{ $v.secrets.serviceCredential.existingSecret }}
      key: {{ $v.secrets.serviceCredential.key }}
{{- end }}
{{- if and (has $c $topology.needsMasterKey) $v.secrets.memberMasterKey.existingSecret }}
- name: MEMBERD_MEMBER__MASTER_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $v.secrets.memberMasterKey.existingSecret }}
      key: {{ $v.secrets.memberMasterKey.key }}
{{- end }}
{{- if and (has $c $topology.runsIdentity) $v.secrets.bootstrapPassword.existingSecret }}
- name: MEMBERD_IDENTITY__BOOTSTRAP_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $v.secrets.bootstrapPassword.existingSecret }}
      key: {{ $v.secrets.bootstrapPassword.key }}
{{- end }}
{{- if and (has $c $topology.runsIdentity) $v.secrets.signingKey.existingSecret }}
- name: MEMBERD_IDENTITY__SIGNING_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $v.secrets.signingKey.existingSecret }}
      key: {{ $v.secrets.signingKey.key }}
{{- end }}
{{- if and (has $c $topology.runsIdentity) $v.secrets.verifyKeys.existingSecret }}
- name: MEMBERD_IDENTITY__VERIFY_KEYS
  valueFrom:
    secretKeyRef:
      name: {{ $v.secrets.verifyKeys.existingSecret }}
      key: {{ $v.secrets.verifyKeys.key }}
{{- end }}
{{- if and (or (include "memberd.usesScylla" .) (eq $c "migrate")) $v.scylla.credentials.existingSecret }}
- name: MEMBERD_SCYLLA__USER
  valueFrom:
    secretKeyRef:
      name: {{ $v.scylla.credentials.existingSecret }}
      key: {{ $v.scylla.credentials.userKey }}
- name: MEMBERD_SCYLLA__PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $v.scylla.credentials.existingSecret }}
      key: {{ $v.scylla.credentials.passwordKey }}
{{- end }}
{{- end -}}

{{/* The fixed addresses; they win over the file (environment over file). */}}
{{- define "memberd.addressEnv" -}}
- name: MEMBERD_HTTP_ADDR
  value: "0.0.0.0:8080"
- name: MEMBERD_GRPC_ADDR
  value: "0.0.0.0:50051"
- name: MEMBERD_DATA_DIR
  value: /var/lib/memberd
{{- end -}}

{{- define "memberd.topologySpread" -}}
{{- $ts := .root.Values.topologySpread -}}
- topologyKey: {{ $ts.topologyKey }}
  maxSkew: {{ $ts.maxSkew }}
  whenUnsatisfiable: {{ $ts.whenUnsatisfiable }}
  labelSelector:
    matchLabels:
      {{- include "memberd.componentSelectorLabels" . | nindent 6 }}
  matchLabelKeys:
    - pod-template-hash
{{- if $ts.acrossNodes }}
- topologyKey: kubernetes.io/hostname
  maxSkew: {{ $ts.maxSkew }}
  whenUnsatisfiable: ScheduleAnyway
  labelSelector:
    matchLabels:
      {{- include "memberd.componentSelectorLabels" . | nindent 6 }}
  matchLabelKeys:
    - pod-template-hash
{{- end }}
{{- end -}}

{{/* Resources for the test pods and other short-lived helpers. */}}
{{- define "memberd.smallResources" -}}
requests:
  cpu: 50m
  memory: 32Mi
limits:
  cpu: 200m
  memory: 64Mi
{{- end -}}

{{/* PromQL: this release's memberd targets (the job label is the Service's name). */}}
{{- define "memberd.promSelector" -}}
namespace="{{ .Release.Namespace }}",job=~"{{ include "memberd.fullname" . }}(-gateway|-identity|-ledger|-member|-campaign)?"
{{- end -}}
