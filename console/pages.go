package console

import (
	"cmp"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/auth"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/progress"
	"github.com/sortie-cd/sortie/store"
)

// Page is what the layout of every page needs.
type Page struct {
	Title   string
	Session *session
	Flash   *Flash
	Nav     string
	// MaySwitch: the principal is an organization admin, who may act in
	// another tenant.
	MaySwitch bool
}

func (c *Console) page(r *http.Request, s *session, title string) Page {
	p := Page{Title: title, Session: s, Nav: navOf(r.URL.Path)}
	if s != nil {
		_, user := s.Username()
		p.MaySwitch = !user && auth.Has(s.Roles, nil, auth.GrantOrganization)
	}
	return p
}

func navOf(path string) string {
	switch {
	case path == "/" || strings.HasPrefix(path, "/pipelines/"):
		return "deployments"
	case path == "/delivery":
		return "delivery"
	case strings.HasPrefix(path, "/settings/"):
		return strings.TrimPrefix(path, "/settings/")
	}
	return ""
}

// listLimit is how many pipelines the list shows; the filters reach older
// ones.
const listLimit = 100

// Row is one pipeline of the deployments list.
type Row struct {
	ID, Application, StartedBy, Message string
	Status                              pipeline.Status
	Created                             time.Time
	Took                                string
	Targets                             []TargetBadge
}

// TargetBadge is a target's name and status.
type TargetBadge struct {
	Name   string
	Status pipeline.Status
}

type listData struct {
	Page
	Application, Status, Query string
	Statuses                   []pipeline.Status
	Rows                       []Row
	Limit                      int
	Error                      string
}

var allStatuses = []pipeline.Status{
	pipeline.StatusQueued, pipeline.StatusRunning, pipeline.StatusPaused, pipeline.StatusAwaitingApproval,
	pipeline.StatusSucceeded, pipeline.StatusFailed, pipeline.StatusCancelled,
}

func (c *Console) listData(r *http.Request, s *session) (listData, error) {
	q := r.URL.Query()
	d := listData{
		Page:        c.page(r, s, "Deployments"),
		Application: strings.TrimSpace(q.Get("application")),
		Status:      strings.ToUpper(strings.TrimSpace(q.Get("status"))),
		Query:       strings.TrimSpace(q.Get("q")),
		Statuses:    allStatuses,
		Limit:       listLimit,
	}
	f := store.Filter{Application: d.Application, Limit: listLimit}
	if d.Status != "" {
		if !slices.Contains(allStatuses, pipeline.Status(d.Status)) {
			d.Error = "unknown status " + d.Status
			d.Status = ""
		} else {
			f.Statuses = []pipeline.Status{pipeline.Status(d.Status)}
		}
	}
	ps, err := c.d.List(r.Context(), s.Tenant, f)
	if err != nil {
		return d, err
	}
	now := c.now()
	needle := strings.ToLower(d.Query)
	for _, sp := range ps {
		row := Row{
			ID: sp.ID, Application: sp.Application, StartedBy: sp.StartedBy, Status: sp.Status,
			Message: sp.State.Message, Created: sp.CreatedAt, Took: took(sp.State.StartedAt, sp.State.EndedAt, now),
		}
		hay := []string{sp.ID, sp.Application, sp.StartedBy, string(sp.Status)}
		for _, t := range sp.State.Targets {
			row.Targets = append(row.Targets, TargetBadge{Name: t.Name, Status: t.Status})
			hay = append(hay, t.Name)
		}
		if needle != "" && !strings.Contains(strings.ToLower(strings.Join(hay, "\x00")), needle) {
			continue
		}
		d.Rows = append(d.Rows, row)
	}
	return d, nil
}

func (c *Console) listPage(w http.ResponseWriter, r *http.Request, s *session) {
	d, err := c.listData(r, s)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	d.Flash = takeFlash(w, r)
	c.render(w, r, http.StatusOK, "list", d)
}

func (c *Console) listFragment(w http.ResponseWriter, r *http.Request, s *session) {
	d, err := c.listData(r, s)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	c.render(w, r, http.StatusOK, "listtable", d)
}

// took is how long something ran, or has been running.
func took(start, end, now time.Time) string {
	if start.IsZero() {
		return "–"
	}
	if end.IsZero() {
		end = now
	}
	return humanDuration(end.Sub(start))
}

func humanDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return "<1s"
	case d < time.Minute:
		return d.Round(time.Second).String()
	case d < time.Hour:
		return strings.TrimSuffix(d.Round(time.Second).String(), "0s")
	}
	return strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
}

type pipelineData struct {
	Page
	P         *store.Pipeline
	Graph     Graph
	Targets   []TargetBadge
	Detail    *Detail
	Cancel    Action
	Redeploy  Action
	RestoreTo Action
	Live      bool
	Took      string
	History   []pipeline.Record
}

// Detail is the panel of the selected target.
type Detail struct {
	pipeline.TargetState
	Account, Namespace, Strategy string
	DependsOn                    []string
	NewPods, OldPods             int
	PodsKnown                    bool
	Steps                        []StepRow
	Rollback                     Action
	Timeline                     []TimelineRow
	// Objects are the Kubernetes objects the target's commands wrote.
	Objects []ObjectRow
}

// StepRow is one step of the detail panel.
type StepRow struct {
	pipeline.StepState
	Title         string
	Current       bool
	MessageHTML   template.HTML
	DeadlineLabel string
	Actions       []Action
	// Judgments are an analysis step's runs; Calls a webhook step's
	// requests as sent (secrets masked).
	Judgments []JudgmentRow
	Calls     []WebhookCall
}

// TimelineRow is one entry of a target's events timeline.
type TimelineRow struct {
	At     time.Time
	What   string
	By     string
	Detail template.HTML
	Status pipeline.Status
}

func (c *Console) pipelineData(r *http.Request, s *session) (pipelineData, error) {
	id := r.PathValue("id")
	sp, err := c.d.Get(r.Context(), s.Tenant, id)
	if err != nil {
		return pipelineData{}, err
	}
	st := &sp.State
	selected := r.URL.Query().Get("target")
	if st.Target(selected) == nil {
		selected = ""
		// The target that needs someone, else the first running one, else
		// the first.
		for _, t := range st.Targets {
			if t.Status == pipeline.StatusAwaitingApproval {
				selected = t.Name
				break
			}
		}
		if selected == "" && len(st.Targets) > 0 {
			selected = st.Targets[0].Name
			for _, t := range st.Targets {
				if t.Status.Active() {
					selected = t.Name
					break
				}
			}
		}
	}
	base := "/pipelines/" + url.PathEscape(sp.ID)
	d := pipelineData{
		Page:    c.page(r, s, sp.Application+" · "+sp.ID),
		P:       sp,
		Graph:   layoutGraph(st, sp.StartedBy, selected, func(t string) string { return base + "?target=" + url.QueryEscape(t) }),
		Cancel:  cancelAction(st, s.Principal),
		Live:    !sp.Status.Terminal(),
		Took:    took(st.StartedAt, st.EndedAt, c.now()),
		History: st.History,
	}
	for _, t := range st.Targets {
		d.Targets = append(d.Targets, TargetBadge{Name: t.Name, Status: t.Status})
	}
	d.Redeploy = Action{Name: "redeploy", Label: "Redeploy", Reason: mayDeploy(s.Principal)}
	d.RestoreTo = restoreToAction(st, s.Principal)
	if t := st.Target(selected); t != nil {
		evs, err := c.d.Events(r.Context(), s.Tenant, sp.ID, 0)
		if err != nil {
			return d, err
		}
		d.Detail = detailOf(st, s, t, evs)
	}
	return d, nil
}

func detailOf(st *pipeline.State, s *session, t *pipeline.TargetState, evs []store.Event) *Detail {
	d := &Detail{TargetState: *t, Rollback: rollbackAction(st, s.Principal, t)}
	if ts := st.Spec.Target(t.Name); ts != nil {
		d.Account, d.Namespace, d.DependsOn, d.Strategy = ts.Account, ts.Namespace, ts.DependsOn, ts.Strategy.Name
	}
	d.NewPods, d.OldPods, d.PodsKnown = podCounts(t)
	reports := reportsOf(t.Name, evs)
	d.Objects = reports.objects
	cur := currentStep(t)
	steps := t.Steps
	if t.Rollback != nil {
		steps = append(slices.Clone(steps), *t.Rollback)
	}
	for i := range steps {
		step := &steps[i]
		row := StepRow{
			StepState:     *step,
			Title:         stepTitle(st, t.Name, step),
			Current:       i == cur || (step.Kind == pipeline.KindRollback && step.Status.Active()),
			DeadlineLabel: deadlineLabel(step),
			Actions:       stepActions(st, s.Principal, t.Name, step),
			Judgments:     reports.judgments[step.ID],
			Calls:         reports.calls[step.ID],
		}
		if step.Message != "" {
			// Webhook callbacks bring markdown; every message goes through
			// the same safe renderer.
			row.MessageHTML = Markdown(step.Message)
		}
		d.Steps = append(d.Steps, row)
	}
	for _, h := range st.History {
		if h.Target == "" || h.Target == t.Name {
			d.Timeline = append(d.Timeline, TimelineRow{At: h.At, What: h.Action + stepSuffix(h.Step), By: h.By, Detail: Markdown(h.Message)})
		}
	}
	for _, ev := range evs {
		if ev.Type == progress.EventRetry {
			var rt progress.RetryEvent
			if jsonUnmarshal(ev.Data, &rt) == nil && rt.Target == t.Name {
				d.Timeline = append(d.Timeline, TimelineRow{At: ev.At, What: "step " + rt.Step + " retrying", Detail: Markdown(rt.Message)})
			}
			continue
		}
		if ev.Type != "status" {
			continue
		}
		var ch pipeline.Change
		if jsonUnmarshal(ev.Data, &ch) != nil || (ch.Target != "" && ch.Target != t.Name) {
			continue
		}
		what := "pipeline"
		if ch.Target != "" {
			what = "target"
		}
		if ch.Step != "" {
			what = "step " + ch.Step
		}
		d.Timeline = append(d.Timeline, TimelineRow{At: ev.At, What: what + " → " + string(ch.To), Detail: Markdown(ch.Message), Status: ch.To})
	}
	slices.SortStableFunc(d.Timeline, func(a, b TimelineRow) int { return cmp.Compare(b.At.UnixNano(), a.At.UnixNano()) })
	return d
}

func stepSuffix(step string) string {
	if step == "" {
		return ""
	}
	return " " + step
}

func (c *Console) pipelinePage(w http.ResponseWriter, r *http.Request, s *session) {
	d, err := c.pipelineData(r, s)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	d.Flash = takeFlash(w, r)
	c.render(w, r, http.StatusOK, "pipeline", d)
}

func (c *Console) pipelineFragment(w http.ResponseWriter, r *http.Request, s *session) {
	d, err := c.pipelineData(r, s)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	c.render(w, r, http.StatusOK, "pipelinelive", d)
}

// act runs approve, reject, skip, rollback or cancel through the REST API in
// process, as the signed-in principal: the API checks the roles, the engine
// the gate's requiresRoles, and the API's audit log records the click as it
// records the same call from the CLI.
func (c *Console) act(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	f := r.PostForm
	action := r.PathValue("action")
	if action == "restore" || action == "restore-to" {
		c.restore(w, r, s, id, action)
		return
	}
	req := api.ActionRequest{Target: f.Get("target"), Step: f.Get("step")}
	switch action {
	case "approve", "skip":
	case "reject":
		req.Reason = strings.TrimSpace(f.Get("reason"))
	case "rollback":
		req.Step, req.Reason = "", strings.TrimSpace(f.Get("reason"))
	case "cancel":
		req = api.ActionRequest{Reason: strings.TrimSpace(f.Get("reason"))}
	default:
		c.notFound(w, r, s)
		return
	}
	back := "/pipelines/" + url.PathEscape(id)
	if req.Target != "" {
		back += "?target=" + url.QueryEscape(req.Target)
	}
	// Said in the console's words before the API says it in its own.
	refusal := mayDeploy(s.Principal)
	if (action == "approve" || action == "reject") && refusal != "" {
		if slices.ContainsFunc(s.Roles, func(r string) bool { return !slices.Contains(systemRoles, r) }) {
			refusal = ""
		}
	}
	if refusal != "" {
		setFlash(w, r, "error", "Refused: "+refusal+".")
		http.Redirect(w, r, back, http.StatusSeeOther)
		return
	}
	if err := c.callAPI(r, s, http.MethodPost, api.Prefix+"/pipelines/"+url.PathEscape(id)+"/"+action, req, nil); err != nil {
		if msg := userMessage(err); msg != "" {
			setFlash(w, r, "error", "Refused: "+msg)
			http.Redirect(w, r, back, http.StatusSeeOther)
			return
		}
		c.fail(w, r, s, err)
		return
	}
	setFlash(w, r, "ok", actionDone(action, req.Target, req.Step))
	http.Redirect(w, r, back, http.StatusSeeOther)
}

// restore rolls back after success through POST …/restore, as `sortie
// deploy rollback ID --target T` (restore: the version before this
// pipeline's) and `--to ID` (restore-to: this pipeline's version) do; the
// API checks the roles and audits it, the reason is required.
func (c *Console) restore(w http.ResponseWriter, r *http.Request, s *session, id, action string) {
	target := r.PostForm.Get("target")
	back := "/pipelines/" + url.PathEscape(id)
	if target != "" {
		back += "?target=" + url.QueryEscape(target)
	}
	req := api.RestoreRequest{Reason: strings.TrimSpace(r.PostForm.Get("reason"))}
	if action == "restore" {
		req.Targets, req.Previous = []string{target}, true
	}
	refusal := mayDeploy(s.Principal)
	switch {
	case refusal != "":
		refusal = "Refused: " + refusal + "."
	case req.Reason == "":
		refusal = "A rollback after success needs a reason."
	case action == "restore" && target == "":
		refusal = "Choose the target to roll back."
	}
	if refusal != "" {
		setFlash(w, r, "error", refusal)
		http.Redirect(w, r, back, http.StatusSeeOther)
		return
	}
	var res api.StartResult
	if err := c.callAPI(r, s, http.MethodPost, api.Prefix+"/pipelines/"+url.PathEscape(id)+"/restore", req, &res); err != nil {
		if msg := userMessage(err); msg != "" {
			setFlash(w, r, "error", "Refused: "+msg)
			http.Redirect(w, r, back, http.StatusSeeOther)
			return
		}
		c.fail(w, r, s, err)
		return
	}
	setFlash(w, r, "ok", "Rolling back as pipeline "+res.PipelineID+".")
	http.Redirect(w, r, "/pipelines/"+url.PathEscape(res.PipelineID), http.StatusSeeOther)
}

func actionDone(action, target, step string) string {
	what := map[string]string{"approve": "Approved", "reject": "Rejected", "skip": "Skipped", "rollback": "Rolling back", "cancel": "Cancelling the pipeline"}[action]
	if target != "" {
		what += " " + target
	}
	if step != "" {
		what += " " + step
	}
	return what + "."
}

func (c *Console) redeploy(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	back := "/pipelines/" + url.PathEscape(id)
	if reason := mayDeploy(s.Principal); reason != "" {
		setFlash(w, r, "error", "Refused: "+reason+".")
		http.Redirect(w, r, back, http.StatusSeeOther)
		return
	}
	var targets []string
	for _, t := range r.PostForm["targets"] {
		if t = strings.TrimSpace(t); t != "" {
			targets = append(targets, t)
		}
	}
	if len(targets) == 0 {
		setFlash(w, r, "error", "Choose at least one target to redeploy.")
		http.Redirect(w, r, back, http.StatusSeeOther)
		return
	}
	var res api.StartResult
	if err := c.callAPI(r, s, http.MethodPost, api.Prefix+"/pipelines/"+url.PathEscape(id)+"/redeploy", api.RedeployRequest{Targets: targets}, &res); err != nil {
		if msg := userMessage(err); msg != "" {
			setFlash(w, r, "error", "Redeploy refused: "+msg)
			http.Redirect(w, r, back, http.StatusSeeOther)
			return
		}
		c.fail(w, r, s, err)
		return
	}
	msg := "Redeployed as pipeline " + res.PipelineID + "."
	if res.Queued {
		msg = "Redeploy queued as pipeline " + res.PipelineID + " behind the one in flight."
	}
	setFlash(w, r, "ok", msg)
	http.Redirect(w, r, "/pipelines/"+url.PathEscape(res.PipelineID), http.StatusSeeOther)
}
