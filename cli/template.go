package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/template"

	"github.com/spf13/cobra"

	"github.com/sortie-cd/sortie/deployfile"
)

// TemplateOptions are the inputs of `sortie template kubernetes`.
type TemplateOptions struct {
	Strategy string
	Features []string
	OutDir   string
}

var templateFeatures = []string{"manual", "automated", "traffic", "webhook"}

func newTemplateCmd(ios IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "template",
		Short: "Print a commented skeleton of a deployment file",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			return usageErrorf("template needs a kind: 'sortie template kubernetes canary|bluegreen'")
		},
	}
	opts := TemplateOptions{}
	k := &cobra.Command{
		Use:   "kubernetes canary|bluegreen",
		Short: "A deployment file for Kubernetes with a canary or blue/green strategy",
		Long: strings.TrimSpace(`
Print a commented deployment file that validates as printed: two targets
(staging, then prod) and a canary or blue/green strategy for prod. Its
manifests are inline; with --out DIR the file and its manifests are written
to DIR/deploy.yml and DIR/manifests/ instead.

Features add to the skeleton:
  manual     an approval before prod and inside the strategy
  automated  metric analysis steps and the queries they use
  traffic    traffic management (an SMI TrafficSplit for canary, Service
             selectors for blue/green)
  webhook    a webhook run after staging, with a callback`),
		ValidArgs: []string{"canary", "bluegreen"},
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErrorf("give one strategy: canary or bluegreen")
			}
			return nil
		},
		RunE: func(_ *cobra.Command, args []string) error {
			opts.Strategy = args[0]
			return runTemplate(ios, opts)
		},
	}
	k.Flags().StringSliceVarP(&opts.Features, "features", "f", nil, "comma-separated: "+strings.Join(templateFeatures, ","))
	k.Flags().StringVar(&opts.OutDir, "out", "", "write DIR/deploy.yml and DIR/manifests/APP.yaml instead of printing")
	cmd.AddCommand(k)
	return cmd
}

// skeleton is what the template of a deployment file is filled with.
type skeleton struct {
	Canary, BlueGreen                   bool
	Manual, Automated, Traffic, Webhook bool
	App                                 string
	ManifestPath                        string // "" for inline
	Manifest                            string
}

func runTemplate(ios IOStreams, opts TemplateOptions) error {
	sk := skeleton{App: "hello-web"}
	switch strings.ToLower(opts.Strategy) {
	case "canary":
		sk.Canary = true
	case "bluegreen", "blue-green", "bg":
		sk.BlueGreen = true
	default:
		return usageErrorf("unknown strategy %q: give canary or bluegreen", opts.Strategy)
	}
	for _, f := range opts.Features {
		switch strings.TrimSpace(strings.ToLower(f)) {
		case "manual":
			sk.Manual = true
		case "automated":
			sk.Automated = true
		case "traffic":
			sk.Traffic = true
		case "webhook":
			sk.Webhook = true
		case "":
		default:
			hint := ""
			if c := deployfile.Suggest(f, templateFeatures); c != "" {
				hint = fmt.Sprintf("; did you mean %q?", c)
			}
			return usageErrorf("unknown feature %q (features: %s)%s", f, strings.Join(templateFeatures, ", "), hint)
		}
	}
	sk.Manifest = manifestSkeleton(sk)
	if opts.OutDir == "" {
		text, err := sk.render()
		if err != nil {
			return err
		}
		_, err = ios.Out.Write(text)
		return err
	}
	sk.ManifestPath = "manifests/" + sk.App + ".yaml"
	text, err := sk.render()
	if err != nil {
		return err
	}
	deployPath := filepath.Join(opts.OutDir, "deploy.yml")
	manifestPath := filepath.Join(opts.OutDir, filepath.FromSlash(sk.ManifestPath))
	for _, p := range []string{deployPath, manifestPath} {
		if _, err := os.Stat(p); err == nil {
			return fmt.Errorf("%s already exists; not overwriting it", p)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Dir(manifestPath), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(manifestPath, []byte(sk.Manifest), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(deployPath, text, 0o644); err != nil {
		return err
	}
	_, err = fmt.Fprintf(ios.Out, "wrote %s and %s\ncheck it with: sortie validate -f %s\n", deployPath, manifestPath, deployPath)
	return err
}

func (sk skeleton) render() ([]byte, error) {
	var b bytes.Buffer
	if err := deployTemplate.Execute(&b, sk); err != nil {
		return nil, fmt.Errorf("render the template: %w", err)
	}
	return b.Bytes(), nil
}

func manifestSkeleton(sk skeleton) string {
	var b bytes.Buffer
	if err := manifestTemplate.Execute(&b, sk); err != nil {
		panic(err) // the template is a constant
	}
	return b.String()
}

func indent(n int, s string) string {
	pad := strings.Repeat(" ", n)
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = pad + l
		}
	}
	return strings.Join(lines, "\n")
}

var funcs = template.FuncMap{"indent": indent, "schemaID": func() string { return deployfile.SchemaID }}

// The templates use [[ ]] so that Sortie's own {{...}} variables pass through.
var manifestTemplate = template.Must(template.New("manifest").Delims("[[", "]]").Parse(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: [[.App]]
  labels:
    app: [[.App]]
spec:
  replicas: 4
  selector:
    matchLabels:
      app: [[.App]]
  template:
    metadata:
      labels:
        app: [[.App]]
    spec:
      containers:
        - name: [[.App]]
          image: nginx:1.27
          ports:
            - containerPort: 80
---
apiVersion: v1
kind: Service
metadata:
  name: [[.App]]
spec:
  selector:
    app: [[.App]]
  ports:
    - port: 80
      targetPort: 80
[[- if .BlueGreen]]
---
apiVersion: v1
kind: Service
metadata:
  name: [[.App]]-preview
spec:
  selector:
    app: [[.App]]
  ports:
    - port: 80
      targetPort: 80
[[- end]]
`))

var deployTemplate = template.Must(template.New("deploy").Delims("[[", "]]").Funcs(funcs).Parse(`# yaml-language-server: $schema=[[schemaID]]
#
# A Sortie deployment file (the dialect of Armory CD-as-a-Service files).
# Check it with 'sortie validate -f FILE'; see what it would do with
# 'sortie deploy plan -f FILE'.
version: v1
kind: kubernetes
# The application's name. One deployment of it runs at a time.
application: [[.App]]
deploymentConfig:
  # Roll a target back when its pods are not ready within this time.
  timeout:
    duration: 30
    unit: minutes
  # What a second 'deploy start' does while one is in flight:
  # reject (exit 3) or enqueueOne (queue it; a newer one replaces it).
  ifDeploymentInProgress:
    strategy: reject
# Where to deploy. Each target is a cluster (the identifier its agent
# registered with) and a namespace, with the strategy to use there.
targets:
  staging:
    account: staging-cluster
    namespace: [[.App]]-staging
    strategy: rolling
[[- if .Webhook]]
    constraints:
      # Gates after the strategy, run in parallel; dependants wait for them.
      afterDeployment:
        - runWebhook:
            name: smoke-tests
            context:
              suite: smoke
[[- end]]
  prod:
    account: prod-cluster
    namespace: [[.App]]
    strategy: [[if .Canary]]canary[[else]]blue-green[[end]]
    constraints:
      # prod starts only when staging succeeded.
      dependsOn: ["staging"]
[[- if .Manual]]
      # Gates before the strategy, run in parallel.
      beforeDeployment:
        - pause:
            untilApproved: true
            # Roll back when nobody approved within this time.
            approvalExpiration:
              duration: 8
              unit: hours
[[- end]]
# What to deploy: Kubernetes manifests by file, by directory (read
# recursively for .yaml/.yml files) or inline. Paths are relative to this
# file's folder. 'targets' limits an entry to some targets.
manifests:
[[- if .ManifestPath]]
  - path: [[.ManifestPath]]
[[- else]]
  - inline: |
[[indent 6 .Manifest]]
[[- end]]
# How to deploy.
strategies:
  # Straight to 100%: pods are replaced, then the target is done.
  rolling:
    canary:
      steps:
        - setWeight:
            weight: 100
[[- if .Canary]]
  # Step by step. [[if .Traffic]]Weights move an SMI TrafficSplit (see trafficManagement).[[else]]Without a service mesh a weight is a share of the pods:
  # of 4 replicas, 25% runs 1 new pod and 3 old ones.[[end]]
  canary:
    canary:
      steps:
        - setWeight:
            weight: 25
[[- if .Automated]]
        # Judge the new version by metrics; roll back by itself on failure.
        - analysis:
            interval: 1
            units: minutes
            numberOfJudgmentRuns: 3
            rollBackMode: automatic
            rollForwardMode: automatic
            queries: ["error-ratio"]
[[- else]]
        - pause:
            duration: 5
            unit: minutes
[[- end]]
        - setWeight:
            weight: 50
[[- if .Manual]]
        # Wait until someone approves: 'sortie approve', or the console.
        - pause:
            untilApproved: true
[[- else]]
        - pause:
            duration: 5
            unit: minutes
[[- end]]
        - setWeight:
            weight: 100
[[- else]]
  # The new version starts at full size behind the preview Service; the
  # active Service switches to it after redirectTrafficAfter, and the old
  # version goes after shutDownOldVersionAfter.
  blue-green:
    blueGreen:
[[- if not .Traffic]]
      activeService: [[.App]]
      previewService: [[.App]]-preview
[[- end]]
      redirectTrafficAfter:
[[- if .Manual]]
        - pause:
            untilApproved: true
[[- else]]
        - pause:
            duration: 5
            unit: minutes
[[- end]]
[[- if .Automated]]
        - analysis:
            interval: 1
            units: minutes
            numberOfJudgmentRuns: 3
            rollBackMode: automatic
            queries: ["error-ratio"]
[[- end]]
      shutDownOldVersionAfter:
        - pause:
            duration: 15
            unit: minutes
[[- end]]
[[- if .Automated]]
# Queries for analysis steps, run against a metric provider configured on
# the server. A result outside the limits fails the run.
analysis:
  defaultMetricProviderName: prometheus
  queries:
    - name: error-ratio
      upperLimit: 0.01
      lowerLimit: 0
      queryTemplate: >-
        sum(rate(http_requests_total{code=~"5..",version="{{armory.replicaSetName}}"}[{{armory.promQlStepInterval}}]))
        / sum(rate(http_requests_total{version="{{armory.replicaSetName}}"}[{{armory.promQlStepInterval}}]))
[[- end]]
[[- if .Webhook]]
# HTTP calls that runWebhook steps make. Unless disableCallback is true,
# the step waits until the called system POSTs {"success": true} to
# {{armory.callbackUri}}/callback. Secrets are stored on the server with
# 'sortie secrets set' and never written here.
webhooks:
  - name: smoke-tests
    method: POST
    uriTemplate: https://ci.example.com/hooks/smoke
    # direct: from the server; remoteNetworkAgent: through the target's agent.
    networkMode: direct
    headers:
      - key: Authorization
        value: "Bearer {{secrets.ci_token}}"
      - key: Content-Type
        value: application/json
    bodyTemplate:
      inline: >-
        {"suite": "{{context.suite}}", "app": "{{armory.applicationName}}",
        "callback": "{{armory.callbackUri}}/callback"}
    retryCount: 2
[[- end]]
[[- if .Traffic]]
# Traffic management for prod.
trafficManagement:
  - targets: ["prod"]
[[- if .Canary]]
    smi:
      - rootServiceName: [[.App]]
[[- else]]
    kubernetes:
      - activeService: [[.App]]
        previewService: [[.App]]-preview
[[- end]]
[[- end]]
`))

// templateFeatureSets lists every combination of features, for tests.
func templateFeatureSets() [][]string {
	var out [][]string
	for mask := range 1 << len(templateFeatures) {
		var set []string
		for i, f := range templateFeatures {
			if mask&(1<<i) != 0 {
				set = append(set, f)
			}
		}
		out = append(out, slices.Clip(set))
	}
	return out
}
