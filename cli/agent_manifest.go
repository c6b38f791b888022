package cli

import (
	"regexp"
	"strconv"
	"strings"
	"text/template"

	"github.com/spf13/cobra"
)

// agentManifestOptions are the flags of `sortie agent manifest`.
type agentManifestOptions struct {
	agentID, namespace, server, image, secret string
	namespaces                                []string
}

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

func newAgentManifestCmd(ios IOStreams) *cobra.Command {
	o := &agentManifestOptions{}
	cmd := &cobra.Command{
		Use:   "manifest",
		Short: "Print the YAML that installs an agent in a cluster",
		Long: strings.TrimSpace(`
Print the Kubernetes objects that install an agent: its Namespace,
ServiceAccount, the ClusterRole and ClusterRoleBinding it needs, and a
Deployment (one replica, probes, resource requests) that reads its client
credential from a Secret you create (the pod waits for it):

  sortie agent manifest --agent-id prod --server https://sortie.example.com | kubectl apply -f -
  kubectl -n sortie create secret generic sortie-agent-credentials \
    --from-literal=client-id=ID --from-literal=client-secret=SECRET

Make the credential with the agent role (POST /api/v1/credentials).

With --namespaces a,b the agent may write only there: it gets a Role and a
RoleBinding in each listed namespace instead of the ClusterRole, and runs
with SORTIE_NAMESPACES, so it refuses any object outside them (and every
cluster-scoped object but those Namespaces) before writing anything.`),
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			switch {
			case o.agentID == "":
				return usageErrorf("--agent-id is required")
			case o.server == "":
				return usageError{errNoServer}
			case !dnsLabel.MatchString(o.namespace):
				return usageErrorf("--namespace %q is not a valid namespace name", o.namespace)
			case !dnsLabel.MatchString(o.secret):
				return usageErrorf("--secret %q is not a valid Secret name", o.secret)
			}
			for _, ns := range o.namespaces {
				if !dnsLabel.MatchString(ns) {
					return usageErrorf("--namespaces: %q is not a valid namespace name", ns)
				}
			}
			return agentManifest.Execute(ios.Out, map[string]any{
				"AgentID": o.agentID, "Namespace": o.namespace, "Server": o.server, "Image": o.image, "Secret": o.secret,
				"Namespaces": o.namespaces, "NamespaceList": strings.Join(o.namespaces, ","),
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.agentID, "agent-id", envOr("SORTIE_AGENT_ID", ""), "the agent identifier: the account targets name for this cluster")
	f.StringVar(&o.namespace, "namespace", "sortie", "namespace the agent runs in")
	f.StringVar(&o.server, "server", envOr("SORTIE_SERVER", ""), "the server's URL as the cluster reaches it")
	f.StringVar(&o.image, "image", Image(), "the sortie container image (default: the one 'make image' built with this binary)")
	f.StringVar(&o.secret, "secret", "sortie-agent-credentials", "the Secret holding client-id and client-secret")
	f.StringSliceVar(&o.namespaces, "namespaces", nil, "the only namespaces the agent may write in (namespaced Roles instead of a ClusterRole); empty means the whole cluster")
	return cmd
}

// The ClusterRole (or, with --namespaces, a Role in each namespace) covers
// what the agent applies and watches: the built-in kinds a deployment
// usually holds, CRDs and Namespaces applied first (cluster-wide only), and
// the traffic-management kinds. Manifests with other kinds need rules added
// here.
var agentManifest = template.Must(template.New("agent").Funcs(template.FuncMap{"q": strconv.Quote}).Parse(`# sortie agent {{q .AgentID}}: apply with kubectl apply -f -
# The agent's pod waits for its credentials Secret (a credential with the
# agent role):
#   kubectl -n {{.Namespace}} create secret generic {{.Secret}} --from-literal=client-id=ID --from-literal=client-secret=SECRET
apiVersion: v1
kind: Namespace
metadata:
  name: {{.Namespace}}
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: sortie-agent
  namespace: {{.Namespace}}
{{- if .Namespaces}}
{{- range .Namespaces}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: sortie-agent
  namespace: {{.}}
rules:
{{- template "rules"}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: sortie-agent
  namespace: {{.}}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: sortie-agent
subjects:
  - kind: ServiceAccount
    name: sortie-agent
    namespace: {{$.Namespace}}
{{- end}}
{{- else}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: sortie-agent
rules:
  - apiGroups: [""]
    resources: [namespaces]
    verbs: [get, list, watch, create, update, patch, delete]
  - apiGroups: [apiextensions.k8s.io]
    resources: [customresourcedefinitions]
    verbs: [get, list, watch, create, update, patch]
{{- template "rules"}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: sortie-agent
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: sortie-agent
subjects:
  - kind: ServiceAccount
    name: sortie-agent
    namespace: {{.Namespace}}
{{- end}}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: sortie-agent
  namespace: {{.Namespace}}
  labels: {app.kubernetes.io/name: sortie-agent}
spec:
  replicas: 1
  # One agent per identifier: the server refuses a second one while the
  # first is connected, so the old pod goes before the new one starts.
  strategy: {type: Recreate}
  selector:
    matchLabels: {app.kubernetes.io/name: sortie-agent}
  template:
    metadata:
      labels: {app.kubernetes.io/name: sortie-agent}
    spec:
      serviceAccountName: sortie-agent
      securityContext: {runAsNonRoot: true, runAsUser: 65532, seccompProfile: {type: RuntimeDefault}}
      containers:
        - name: agent
          image: {{q .Image}}
          args: [agent, --health-addr=:8081, --log-format=json]
          env:
            - {name: SORTIE_SERVER, value: {{q .Server}}}
            - {name: SORTIE_AGENT_ID, value: {{q .AgentID}}}
{{- if .Namespaces}}
            - {name: SORTIE_NAMESPACES, value: {{q .NamespaceList}}}
{{- end}}
            - name: SORTIE_CLIENT_ID
              valueFrom: {secretKeyRef: {name: {{.Secret}}, key: client-id}}
            - name: SORTIE_CLIENT_SECRET
              valueFrom: {secretKeyRef: {name: {{.Secret}}, key: client-secret}}
          ports:
            - {name: health, containerPort: 8081}
          livenessProbe:
            httpGet: {path: /healthz, port: health}
            periodSeconds: 10
          readinessProbe:
            httpGet: {path: /readyz, port: health}
            periodSeconds: 5
          resources:
            requests: {cpu: 50m, memory: 64Mi}
            limits: {memory: 256Mi}
          securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
{{- define "rules"}}
  - apiGroups: [""]
    resources: [services, configmaps, secrets, serviceaccounts, persistentvolumeclaims]
    verbs: [get, list, watch, create, update, patch, delete]
  - apiGroups: [""]
    resources: [pods]
    verbs: [get, list, watch, patch, delete]
  - apiGroups: [""]
    resources: [events, endpoints]
    verbs: [get, list, watch]
  - apiGroups: [""]
    resources: [services/proxy]
    verbs: [get, create, update, patch, delete]
  - apiGroups: [apps]
    resources: [deployments, replicasets, statefulsets, daemonsets]
    verbs: [get, list, watch, create, update, patch, delete]
  - apiGroups: [batch]
    resources: [jobs, cronjobs]
    verbs: [get, list, watch, create, update, patch, delete]
  - apiGroups: [autoscaling]
    resources: [horizontalpodautoscalers]
    verbs: [get, list, watch, create, update, patch, delete]
  - apiGroups: [policy]
    resources: [poddisruptionbudgets]
    verbs: [get, list, watch, create, update, patch, delete]
  - apiGroups: [networking.k8s.io]
    resources: [ingresses, networkpolicies]
    verbs: [get, list, watch, create, update, patch, delete]
  - apiGroups: [split.smi-spec.io]
    resources: [trafficsplits]
    verbs: [get, list, watch, create, update, patch, delete]
  - apiGroups: [networking.istio.io]
    resources: [virtualservices, destinationrules]
    verbs: [get, list, watch, create, update, patch, delete]
  - apiGroups: [gateway.networking.k8s.io]
    resources: [httproutes]
    verbs: [get, list, watch, create, update, patch, delete]
{{- end}}
`))
