package deployfile

import (
	"encoding/json"
	"strings"
	"time"
)

// The model. Struct tags drive three things at once, so they stay in step:
// `yaml` is the key in the file (with `alias` for other spellings that
// circulated), `required`, `enum` and `doc` feed both the validating decoder
// and the JSON Schema, and `json` is the form sent to the server.

// File is a parsed deployment file.
type File struct {
	Version           string               `yaml:"version" json:"version" enum:"v1" doc:"Version of the file format; always v1, the default when omitted (as Armory's schema had it)."`
	Kind              string               `yaml:"kind" json:"kind" enum:"kubernetes" doc:"What is deployed; always kubernetes, the default when omitted (as Armory's schema had it)."`
	Application       string               `yaml:"application" json:"application" required:"true" supplied:"deploy start -n NAME" doc:"Name of the application; one deployment of it runs at a time. Required unless deploy start -n NAME gives it (which also overrides it)."`
	Description       string               `yaml:"description" json:"description,omitempty" doc:"Free text shown with the deployment."`
	Context           Context              `yaml:"context" json:"context,omitempty" doc:"Values for {{context.NAME}} in webhooks and analysis queries."`
	DeploymentConfig  *DeploymentConfig    `yaml:"deploymentConfig" json:"deploymentConfig,omitempty" doc:"Settings for the whole deployment."`
	Targets           Targets              `yaml:"targets" json:"targets" required:"true" doc:"Where to deploy: a map from target name to cluster account, namespace and strategy."`
	Manifests         []*Manifest          `yaml:"manifests" json:"manifests" required:"true" doc:"What to deploy: Kubernetes manifests by file, directory or inline."`
	Strategies        Strategies           `yaml:"strategies" json:"strategies,omitempty" doc:"How to deploy: a map from strategy name to a canary or blueGreen strategy."`
	Analysis          *Analysis            `yaml:"analysis" json:"analysis,omitempty" doc:"Metric queries used by analysis steps."`
	Webhooks          []*Webhook           `yaml:"webhooks" json:"webhooks,omitempty" doc:"HTTP calls that runWebhook steps make."`
	TrafficManagement []*TrafficManagement `yaml:"trafficManagement" json:"trafficManagement,omitempty" doc:"Service mesh or Service-based traffic shifting, per target."`
	// ContextOverrides and TargetFilters are the two keys Armory's CLI
	// added to the file when it sent it (from --add-context and -t), so a
	// file may carry them too.
	ContextOverrides Context         `yaml:"contextOverrides" json:"contextOverrides,omitempty" doc:"Values for {{context.NAME}} that override those of context and of every step's context, as --add-context does (whose values override these in turn)."`
	TargetFilters    []*TargetFilter `yaml:"targetFilters" json:"targetFilters,omitempty" doc:"The only targets that run: [{includeTarget: NAME}, ...]; the others are skipped. deploy start -t replaces them."`

	// Path is the file's name as given; manifest paths resolve from its folder.
	Path string `yaml:"-" json:"path,omitempty"`
	Pos  Pos    `yaml:"-" json:"-"`
}

// TargetFilter names one target that runs.
type TargetFilter struct {
	IncludeTarget Ref `yaml:"includeTarget" json:"includeTarget" required:"true" doc:"Name of a target under targets."`
	Pos           Pos `yaml:"-" json:"-"`
}

// Context is a map of names to values for {{context.NAME}}.
type Context map[string]string

// DeploymentConfig holds settings of the whole deployment.
type DeploymentConfig struct {
	Timeout                *Duration     `yaml:"timeout" json:"timeout,omitempty" doc:"How long pods may take to become ready before the target is rolled back (default 30 minutes, at least 1 minute)."`
	KeepDeploymentObject   *bool         `yaml:"keepDeploymentObject" json:"keepDeploymentObject,omitempty" doc:"Keep the Deployment object after success (Sortie always does)."`
	IfDeploymentInProgress *InProgress   `yaml:"ifDeploymentInProgress" json:"ifDeploymentInProgress,omitempty" doc:"What a start does while another deployment of the application runs."`
	OutsideDeployWindow    string        `yaml:"outsideDeployWindow" json:"outsideDeployWindow,omitempty" enum:"queue,refuse" doc:"Sortie extension: what a start outside a deploy window that does not say (one an admin set without a mode, or one of this file) does: wait until it opens (queue, the default) or be refused (refuse)."`
	KeepPrevious           *KeepPrevious `yaml:"keepPrevious" json:"keepPrevious,omitempty" doc:"Sortie extension: after a target succeeds, keep the version it replaced warm for a while, out of traffic, so that a rollback of the target (sortie deploy rollback ID --target T) brings traffic back to it at once. Default: off, or the server's default."`
	Pos                    Pos           `yaml:"-" json:"-"`
}

// KeepPrevious keeps a target's previous version warm after a success. A
// Sortie extension.
type KeepPrevious struct {
	For      *Duration `yaml:"for" json:"for" required:"true" doc:"How long the previous version is kept after the target succeeded (at most 7 days); then it is removed."`
	Replicas *int64    `yaml:"replicas" json:"replicas,omitempty" doc:"Pods of the previous version kept Ready, out of traffic (a rollback then needs no pod to start); 0, the default, keeps it scaled to zero."`
	Pos      Pos       `yaml:"-" json:"-"`
}

// MaxKeepPrevious bounds keepPrevious.for.
const MaxKeepPrevious = 7 * 24 * time.Hour

// InProgress says what to do with a start while a deployment is in flight.
type InProgress struct {
	Strategy string `yaml:"strategy" json:"strategy" required:"true" enum:"reject,enqueueOne" doc:"reject (HTTP 409) or enqueueOne (queue one; a newer request replaces it)."`
	Pos      Pos    `yaml:"-" json:"-"`
}

// Target is one place to deploy to: a cluster (account) and namespace.
type Target struct {
	Name        string       `yaml:"-" json:"name"`
	Account     string       `yaml:"account" json:"account" required:"true" doc:"Agent identifier of the cluster."`
	Namespace   string       `yaml:"namespace" json:"namespace,omitempty" doc:"Namespace the manifests are applied to, overriding theirs."`
	Strategy    Ref          `yaml:"strategy" json:"strategy" required:"true" doc:"Name of a strategy under strategies."`
	Constraints *Constraints `yaml:"constraints" json:"constraints,omitempty" doc:"Order and gates of this target."`
	Pos         Pos          `yaml:"-" json:"-"`
}

// Constraints order a target after others and gate it.
type Constraints struct {
	DependsOn        []Ref           `yaml:"dependsOn" json:"dependsOn,omitempty" doc:"Targets that must succeed before this one starts."`
	BeforeDeployment []*Step         `yaml:"beforeDeployment" json:"beforeDeployment,omitempty" doc:"Gates run in parallel before the strategy: pause, runWebhook, analysis."`
	AfterDeployment  []*Step         `yaml:"afterDeployment" json:"afterDeployment,omitempty" doc:"Gates run in parallel after the strategy: pause, runWebhook, analysis."`
	DeployWindows    []*DeployWindow `yaml:"deployWindows" json:"deployWindows,omitempty" doc:"Sortie extension: when this target may start deploying. Every window listed here, and every window an admin set for the tenant, the application or the target, must be open."`
	Pos              Pos             `yaml:"-" json:"-"`
}

// DeployWindow is a time when a target may start deploying. A Sortie
// extension.
type DeployWindow struct {
	Name     string   `yaml:"name" json:"name" required:"true" doc:"Name shown in messages."`
	Days     []string `yaml:"days" json:"days,omitempty" doc:"Weekdays it is open: mon, tue, wed, thu, fri, sat, sun. With neither days nor dates, every day."`
	Dates    []string `yaml:"dates" json:"dates,omitempty" doc:"Calendar dates it is open, YYYY-MM-DD."`
	Start    string   `yaml:"start" json:"start,omitempty" doc:"Opening time, HH:MM (quoted). With neither start nor end, the whole day."`
	End      string   `yaml:"end" json:"end,omitempty" doc:"Closing time, HH:MM (quoted); an end not after the start runs past midnight."`
	TimeZone string   `yaml:"timeZone" json:"timeZone,omitempty" doc:"IANA time zone of start and end, such as Europe/Paris (default UTC)."`
	Mode     string   `yaml:"mode" json:"mode,omitempty" enum:"queue,refuse" doc:"What a start outside the window does: wait until it opens (queue) or be refused (refuse); default: deploymentConfig.outsideDeployWindow, else queue."`
	Pos      Pos      `yaml:"-" json:"-"`
}

// Step is one canary step or one gate: exactly one of its fields is set.
type Step struct {
	SetWeight      *SetWeight      `yaml:"setWeight" json:"setWeight,omitempty" doc:"Move the new version to a weight (percent): {weight: N} or N."`
	Pause          *Pause          `yaml:"pause" json:"pause,omitempty" doc:"Wait a duration, or until approved."`
	Analysis       *AnalysisStep   `yaml:"analysis" json:"analysis,omitempty" doc:"Judge the new version by metric queries."`
	RunWebhook     *RunWebhook     `yaml:"runWebhook" json:"runWebhook,omitempty" doc:"Call a webhook and wait for its callback."`
	ExposeServices *ExposeServices `yaml:"exposeServices" json:"exposeServices,omitempty" doc:"Expose Services of the new version at temporary preview URLs."`
	Pos            Pos             `yaml:"-" json:"-"`
}

// Kind is the step's key: setWeight, pause, analysis, runWebhook or exposeServices.
func (s *Step) Kind() string {
	switch {
	case s.SetWeight != nil:
		return "setWeight"
	case s.Pause != nil:
		return "pause"
	case s.Analysis != nil:
		return "analysis"
	case s.RunWebhook != nil:
		return "runWebhook"
	case s.ExposeServices != nil:
		return "exposeServices"
	}
	return ""
}

// SetWeight moves the new version to Weight percent.
type SetWeight struct {
	Weight int `yaml:"weight" json:"weight" required:"true" doc:"Percent of traffic (or pods) for the new version, 0 to 100."`
	Pos    Pos `yaml:"-" json:"-"`
}

// Pause waits for a duration or until approved.
type Pause struct {
	Duration           *int64    `yaml:"duration" json:"duration,omitempty" doc:"How long to wait, in unit."`
	Unit               TimeUnit  `yaml:"unit" alias:"units" json:"unit,omitempty" doc:"seconds, minutes or hours (any case)."`
	UntilApproved      bool      `yaml:"untilApproved" json:"untilApproved,omitempty" doc:"Wait until someone approves."`
	RequiresRoles      []string  `yaml:"requiresRoles" json:"requiresRoles,omitempty" doc:"Roles allowed to approve."`
	Approvers          []string  `yaml:"approvers" json:"approvers,omitempty" doc:"Sortie extension: users or credentials (by name or client id) allowed to approve besides the holders of requiresRoles; each still needs the approve grant."`
	Approvals          int       `yaml:"approvals" json:"approvals,omitempty" doc:"Sortie extension: how many different people or credentials must approve, 1 to 10 (default 1)."`
	NotByStarter       bool      `yaml:"notByStarter" json:"notByStarter,omitempty" doc:"Sortie extension (four eyes): whoever started the deployment may not approve it (it may still reject it)."`
	ApprovalExpiration *Duration `yaml:"approvalExpiration" json:"approvalExpiration,omitempty" doc:"Roll back when nobody approved within this time."`
	// Wait is Duration in Unit; zero for an approval.
	Wait time.Duration `yaml:"-" json:"wait,omitempty"`
	Pos  Pos           `yaml:"-" json:"-"`
}

// Duration is an amount of a unit, as written, and its value.
type Duration struct {
	Amount int64         `yaml:"duration" json:"duration" required:"true" doc:"Amount of unit."`
	Unit   TimeUnit      `yaml:"unit" alias:"units" json:"unit" required:"true" doc:"seconds, minutes or hours (any case)."`
	Value  time.Duration `yaml:"-" json:"value"`
	Pos    Pos           `yaml:"-" json:"-"`
}

// TimeUnit is seconds, minutes or hours as written in the file (any case).
type TimeUnit string

// Duration is one of the unit.
func (u TimeUnit) Duration() time.Duration {
	switch canonicalUnit(string(u)) {
	case "seconds":
		return time.Second
	case "minutes":
		return time.Minute
	case "hours":
		return time.Hour
	}
	return 0
}

// AnalysisStep judges the new version by queries run every interval.
type AnalysisStep struct {
	Interval              int64    `yaml:"interval" json:"interval" required:"true" doc:"Time between judgment runs, in units."`
	Units                 TimeUnit `yaml:"units" alias:"unit" json:"units" required:"true" doc:"seconds, minutes or hours (any case)."`
	NumberOfJudgmentRuns  int      `yaml:"numberOfJudgmentRuns" json:"numberOfJudgmentRuns" required:"true" doc:"How many times the queries run, one interval apart. Each query's judgment is the mean of its values over all runs, compared with its limits after the last run (unless abortOnFailedJudgment)."`
	AbortOnFailedJudgment bool     `yaml:"abortOnFailedJudgment" json:"abortOnFailedJudgment,omitempty" doc:"End the analysis as failed at the first run whose value of a query is outside the query's limits, instead of judging the mean after the last run."`
	Queries               []Ref    `yaml:"queries" json:"queries" required:"true" doc:"Names of queries under analysis.queries."`
	RollBackMode          string   `yaml:"rollBackMode" json:"rollBackMode,omitempty" enum:"automatic,manual" doc:"On failure: roll back by itself (automatic) or wait for a person (manual)."`
	RollForwardMode       string   `yaml:"rollForwardMode" json:"rollForwardMode,omitempty" enum:"automatic,manual" doc:"On success: go on by itself (automatic) or wait for a person (manual)."`
	Inconclusive          string   `yaml:"inconclusive" json:"inconclusive,omitempty" enum:"wait,rollback,proceed" doc:"Sortie extension: when a query returns no data or NaN, or its provider stays unreachable, wait for a person to approve or roll back (wait, the default, whatever rollBackMode says), roll back (rollback), or go on as if the analysis passed (proceed)."`
	LookbackMethod        string   `yaml:"lookbackMethod" json:"lookbackMethod,omitempty" enum:"UNSET,GROWING,SLIDING" doc:"Window of each run: from the start (GROWING) or the last interval (SLIDING)."`
	MetricProviderName    string   `yaml:"metricProviderName" json:"metricProviderName,omitempty" doc:"Metric provider; default analysis.defaultMetricProviderName."`
	Context               Context  `yaml:"context" json:"context,omitempty" doc:"Values for {{context.NAME}} in the queries."`
	// Every is Interval in Units.
	Every time.Duration `yaml:"-" json:"every"`
	Pos   Pos           `yaml:"-" json:"-"`
}

// RunWebhook calls the webhook Name.
type RunWebhook struct {
	Name    Ref     `yaml:"name" json:"name" required:"true" doc:"Name of a webhook under webhooks."`
	Context Context `yaml:"context" json:"context,omitempty" doc:"Values for {{context.NAME}} in the webhook."`
	Pos     Pos     `yaml:"-" json:"-"`
}

// Preview URLs of exposeServices live DefaultPreviewTTL unless the step's
// ttl says otherwise, within [MinPreviewTTL, MaxPreviewTTL].
const (
	DefaultPreviewTTL = 5 * time.Minute
	MinPreviewTTL     = time.Minute
	MaxPreviewTTL     = 24 * time.Hour
)

// ExposeServices gives Services of the new version temporary preview URLs.
type ExposeServices struct {
	Services []string  `yaml:"services" json:"services" required:"true" doc:"Names of Services to expose."`
	TTL      *Duration `yaml:"ttl" json:"ttl,omitempty" doc:"How long the preview URLs live."`
	Pos      Pos       `yaml:"-" json:"-"`
}

// Manifest is one entry of manifests: a path (file or directory) or inline YAML.
type Manifest struct {
	Path    string `yaml:"path" json:"path,omitempty" doc:"A file, or a directory read recursively for .yaml/.yml files, relative to the deployment file's folder; or an https URL, which deploy start fetches (its text is stored with the deployment)."`
	Inline  string `yaml:"inline" json:"inline,omitempty" doc:"Kubernetes manifests written in place."`
	Targets []Ref  `yaml:"targets" json:"targets,omitempty" doc:"Targets that get these manifests; all targets when omitted."`
	// Files are the manifest files read for this entry (one for inline).
	Files []*ManifestFile `yaml:"-" json:"files,omitempty"`
	Pos   Pos             `yaml:"-" json:"-"`

	inlineAt inlinePos
}

// ManifestFile is one file of Kubernetes manifests and the objects in it.
type ManifestFile struct {
	Path    string   `json:"path"`
	Content string   `json:"content"`
	Objects []Object `json:"objects"`
}

// Object is one Kubernetes object of a manifest, positioned in its own file.
type Object struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Name       string `json:"name"`
	Namespace  string `json:"namespace,omitempty"`
	// Replicas is spec.replicas of a Deployment (1 when absent); nil for other kinds.
	Replicas *int `json:"replicas,omitempty"`
	Pos      Pos  `json:"pos"`
}

// Targets keep the order of the file.
type Targets []*Target

// Get returns the target called name, or nil.
func (ts Targets) Get(name string) *Target {
	for _, t := range ts {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// Strategies keep the order of the file.
type Strategies []*Strategy

// Get returns the strategy called name, or nil.
func (ss Strategies) Get(name string) *Strategy {
	for _, s := range ss {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// Strategy is a named canary or blue/green strategy.
type Strategy struct {
	Name      string     `yaml:"-" json:"name"`
	Canary    *Canary    `yaml:"canary" json:"canary,omitempty" doc:"Shift to the new version step by step."`
	BlueGreen *BlueGreen `yaml:"blueGreen" json:"blueGreen,omitempty" doc:"Run the new version beside the old, then switch the active Service."`
	Pos       Pos        `yaml:"-" json:"-"`
}

// Canary is an ordered list of steps.
type Canary struct {
	Steps []*Step `yaml:"steps" json:"steps" required:"true" doc:"setWeight, pause, analysis, runWebhook and exposeServices steps, in order."`
	Pos   Pos     `yaml:"-" json:"-"`
}

// BlueGreen switches activeService to the new version after gates.
type BlueGreen struct {
	ActiveService           string  `yaml:"activeService" json:"activeService,omitempty" doc:"Service that serves production traffic (may instead be given under trafficManagement.kubernetes)."`
	PreviewService          string  `yaml:"previewService" json:"previewService,omitempty" doc:"Service that points at the new version before the switch."`
	RedirectTrafficAfter    []*Step `yaml:"redirectTrafficAfter" json:"redirectTrafficAfter,omitempty" doc:"Gates before activeService is switched."`
	ShutDownOldVersionAfter []*Step `yaml:"shutDownOldVersionAfter" alias:"shutdownOldVersionAfter" json:"shutDownOldVersionAfter,omitempty" doc:"Gates before the old version is removed."`
	Pos                     Pos     `yaml:"-" json:"-"`
}

// Analysis holds the queries analysis steps name.
type Analysis struct {
	DefaultMetricProviderName string   `yaml:"defaultMetricProviderName" json:"defaultMetricProviderName,omitempty" doc:"Metric provider of queries that name none."`
	Queries                   []*Query `yaml:"queries" json:"queries" required:"true" doc:"Named queries with their limits."`
	Pos                       Pos      `yaml:"-" json:"-"`
}

// Query is a named metric query with limits.
type Query struct {
	Name               string   `yaml:"name" json:"name" required:"true" doc:"Name analysis steps use."`
	QueryTemplate      Template `yaml:"queryTemplate" json:"queryTemplate" required:"true" doc:"The query, with {{armory.*}} and {{context.*}} variables."`
	UpperLimit         *float64 `yaml:"upperLimit" json:"upperLimit,omitempty" doc:"Fail when the result is above."`
	LowerLimit         *float64 `yaml:"lowerLimit" json:"lowerLimit,omitempty" doc:"Fail when the result is below."`
	MetricProviderName string   `yaml:"metricProviderName" json:"metricProviderName,omitempty" doc:"Metric provider of this query."`
	Pos                Pos      `yaml:"-" json:"-"`
}

// Webhook is an HTTP call with an optional callback.
type Webhook struct {
	Name            string    `yaml:"name" json:"name" required:"true" doc:"Name runWebhook steps use."`
	Method          string    `yaml:"method" json:"method" required:"true" enum:"GET,POST,PUT,PATCH,DELETE,HEAD,OPTIONS" doc:"HTTP method."`
	URITemplate     Template  `yaml:"uriTemplate" json:"uriTemplate" required:"true" doc:"URL, with variables."`
	NetworkMode     string    `yaml:"networkMode" json:"networkMode,omitempty" enum:"direct,remoteNetworkAgent" doc:"direct from the server, or relayed by an agent (remoteNetworkAgent)."`
	AgentIdentifier string    `yaml:"agentIdentifier" json:"agentIdentifier,omitempty" doc:"Agent that relays the call; default the target's account."`
	Headers         []*Header `yaml:"headers" json:"headers,omitempty" doc:"Request headers, with variables."`
	BodyTemplate    *Body     `yaml:"bodyTemplate" json:"bodyTemplate,omitempty" doc:"Request body."`
	RetryCount      int       `yaml:"retryCount" json:"retryCount,omitempty" doc:"Retries when the call fails, 0 to 10."`
	DisableCallback bool      `yaml:"disableCallback" json:"disableCallback,omitempty" doc:"Do not wait for a callback."`
	CallbackTimeout *Duration `yaml:"callbackTimeout" json:"callbackTimeout,omitempty" doc:"Sortie extension: how long to wait for the call and its callback before the step fails (default 24 hours)."`
	Pos             Pos       `yaml:"-" json:"-"`
}

// Header is one request header.
type Header struct {
	Key   string   `yaml:"key" json:"key" required:"true" doc:"Header name."`
	Value Template `yaml:"value" json:"value" required:"true" doc:"Header value, with variables."`
	Pos   Pos      `yaml:"-" json:"-"`
}

// Body is a request body.
type Body struct {
	Inline Template `yaml:"inline" json:"inline" required:"true" doc:"The body, with variables."`
	Pos    Pos      `yaml:"-" json:"-"`
}

// TrafficManagement configures traffic shifting for some (or all) targets.
type TrafficManagement struct {
	Targets    []Ref                `yaml:"targets" json:"targets,omitempty" doc:"Targets this applies to; all when omitted."`
	SMI        []*SMI               `yaml:"smi" json:"smi,omitempty" doc:"SMI TrafficSplit weights (canary)."`
	Istio      []*Istio             `yaml:"istio" json:"istio,omitempty" doc:"Istio VirtualService/DestinationRule weights (canary)."`
	Kubernetes []*KubernetesTraffic `yaml:"kubernetes" json:"kubernetes,omitempty" doc:"Service selectors (blue/green)."`
	HTTPRoute  []*HTTPRouteTraffic  `yaml:"httpRoute" json:"httpRoute,omitempty" doc:"Gateway API HTTPRoute backendRef weights (canary). A Sortie extension."`
	Pos        Pos                  `yaml:"-" json:"-"`
}

// HTTPRouteTraffic names a Gateway API HTTPRoute whose rules send a root
// Service's traffic; during a canary those rules split it by backendRef
// weights between the old and the new version. A Sortie extension.
type HTTPRouteTraffic struct {
	Name              string `yaml:"name" json:"name" required:"true" doc:"metadata.name of the HTTPRoute."`
	RootServiceName   string `yaml:"rootServiceName" json:"rootServiceName" required:"true" doc:"Service the route's backendRefs name; the rules that name it are split."`
	CanaryServiceName string `yaml:"canaryServiceName" json:"canaryServiceName,omitempty" doc:"Service of the new version; created as ROOT-canary when omitted."`
	Pos               Pos    `yaml:"-" json:"-"`
}

// SMI names a root Service whose traffic a TrafficSplit divides.
type SMI struct {
	RootServiceName   string `yaml:"rootServiceName" json:"rootServiceName" required:"true" doc:"Service clients call."`
	CanaryServiceName string `yaml:"canaryServiceName" json:"canaryServiceName,omitempty" doc:"Service of the new version; created as ROOT-canary when omitted."`
	TrafficSplitName  string `yaml:"trafficSplitName" json:"trafficSplitName,omitempty" doc:"Name of the TrafficSplit to create."`
	Pos               Pos    `yaml:"-" json:"-"`
}

// Istio names the VirtualService and DestinationRule whose weights move.
type Istio struct {
	VirtualService  *VirtualService  `yaml:"virtualService" json:"virtualService" required:"true" doc:"VirtualService whose route weights move."`
	DestinationRule *DestinationRule `yaml:"destinationRule" json:"destinationRule,omitempty" doc:"DestinationRule whose subsets select the versions."`
	Pos             Pos              `yaml:"-" json:"-"`
}

// VirtualService is an Istio VirtualService and route.
type VirtualService struct {
	Name          string `yaml:"name" json:"name" required:"true" doc:"metadata.name of the VirtualService."`
	HTTPRouteName string `yaml:"httpRouteName" json:"httpRouteName,omitempty" doc:"Name of the http route to change."`
	Pos           Pos    `yaml:"-" json:"-"`
}

// DestinationRule is an Istio DestinationRule and its subsets.
type DestinationRule struct {
	Name             string `yaml:"name" json:"name" required:"true" doc:"metadata.name of the DestinationRule."`
	ActiveSubsetName string `yaml:"activeSubsetName" json:"activeSubsetName,omitempty" doc:"Subset of the current version."`
	CanarySubsetName string `yaml:"canarySubsetName" json:"canarySubsetName,omitempty" doc:"Subset of the new version."`
	Pos              Pos    `yaml:"-" json:"-"`
}

// KubernetesTraffic names the Services of a blue/green switch.
type KubernetesTraffic struct {
	ActiveService  string `yaml:"activeService" json:"activeService" required:"true" doc:"Service that serves production traffic."`
	PreviewService string `yaml:"previewService" json:"previewService,omitempty" doc:"Service that points at the new version before the switch."`
	Pos            Pos    `yaml:"-" json:"-"`
}

// Ref is a name that refers to something else in the file, with its position.
type Ref struct {
	Name string
	Pos  Pos
}

func (r Ref) MarshalJSON() ([]byte, error) { return json.Marshal(r.Name) }

func (r *Ref) UnmarshalJSON(b []byte) error { return json.Unmarshal(b, &r.Name) }

// Template is a string with {{...}} variables, with its position.
type Template struct {
	Text string
	Pos  Pos

	// shift is how many columns the text starts after Pos (1 for a quoted
	// string), or -1 when the text spans lines (a block scalar).
	shift int
}

// posOf is the position of byte off of the text: exact on a one-line
// scalar, the value's start otherwise.
func (t Template) posOf(off int) Pos {
	if t.shift < 0 || t.Pos.Line == 0 || strings.Contains(t.Text[:off], "\n") {
		return t.Pos
	}
	p := t.Pos
	p.Col += t.shift + len([]rune(t.Text[:off]))
	return p
}

func (t Template) MarshalJSON() ([]byte, error) { return json.Marshal(t.Text) }

func (t *Template) UnmarshalJSON(b []byte) error { return json.Unmarshal(b, &t.Text) }
