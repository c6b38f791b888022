package console

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/auth"
	"github.com/sortie-cd/sortie/pipeline"
)

// windowsData is the deploy windows and freezes page.
type windowsData struct {
	Page
	Windows []pipeline.Window
	Freezes []pipeline.Freeze
	// Write is why the forms are disabled, or "".
	Write string
	Error string
	Days  []string
}

func (c *Console) windowsData(r *http.Request, s *session) (windowsData, error) {
	d := windowsData{Page: c.page(r, s, "Deploy windows and freezes"), Write: refusal(s.Principal, auth.GrantAdmin, "sets deploy windows and freezes"),
		Days: []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}}
	var ws api.WindowList
	if err := c.callAPI(r, s, http.MethodGet, api.Prefix+"/windows", nil, &ws); err != nil {
		return d, err
	}
	var fs api.FreezeList
	if err := c.callAPI(r, s, http.MethodGet, api.Prefix+"/freezes", nil, &fs); err != nil {
		return d, err
	}
	d.Windows, d.Freezes = ws.Windows, fs.Freezes
	return d, nil
}

func (c *Console) windowsPage(w http.ResponseWriter, r *http.Request, s *session) {
	d, err := c.windowsData(r, s)
	if err != nil {
		d.Error = errorText(err)
	}
	d.Flash = takeFlash(w, r)
	c.render(w, r, http.StatusOK, "windows", d)
}

// formScope is the scope the form's kind and name choose.
func formScope(f url.Values) string {
	name := strings.TrimSpace(f.Get("scope_name"))
	switch f.Get("scope") {
	case "application":
		return pipeline.ApplicationScope(name)
	case "target":
		return pipeline.TargetScope(name)
	}
	return pipeline.ScopeTenant
}

func (c *Console) putWindow(w http.ResponseWriter, r *http.Request, s *session) {
	f := r.PostForm
	win := pipeline.Window{Name: strings.TrimSpace(f.Get("name")), Scope: formScope(f), Days: f["days"],
		Start: f.Get("start"), End: f.Get("end"), TimeZone: strings.TrimSpace(f.Get("time_zone")), Mode: pipeline.WindowMode(f.Get("mode"))}
	for d := range strings.SplitSeq(f.Get("dates"), ",") {
		if d = strings.TrimSpace(d); d != "" {
			win.Dates = append(win.Dates, d)
		}
	}
	path := api.Prefix + "/windows/" + url.PathEscape(win.Scope) + "/" + url.PathEscape(win.Name)
	if err := c.callAPI(r, s, http.MethodPut, path, win, nil); err != nil {
		backTo(w, r, "/settings/windows", "error", "Deploy window not set: "+errorText(err))
		return
	}
	backTo(w, r, "/settings/windows", "ok", "Set "+win.String()+".")
}

func (c *Console) deleteWindow(w http.ResponseWriter, r *http.Request, s *session) {
	scope, name := r.PostForm.Get("scope"), r.PostForm.Get("name")
	if err := c.callAPI(r, s, http.MethodDelete, api.Prefix+"/windows/"+url.PathEscape(scope)+"/"+url.PathEscape(name), nil, nil); err != nil {
		backTo(w, r, "/settings/windows", "error", "Deploy window "+name+" not deleted: "+errorText(err))
		return
	}
	backTo(w, r, "/settings/windows", "ok", "Deleted deploy window "+name+" of "+scope+".")
}

func (c *Console) setFreeze(w http.ResponseWriter, r *http.Request, s *session) {
	f := r.PostForm
	scope := formScope(f)
	req := api.FreezeRequest{Reason: strings.TrimSpace(f.Get("reason"))}
	if h := strings.TrimSpace(f.Get("hours")); h != "" {
		d, err := time.ParseDuration(h + "h")
		if err != nil || d <= 0 {
			backTo(w, r, "/settings/windows", "error", "Freeze not set: the number of hours is not a positive number.")
			return
		}
		req.Until = c.now().Add(d)
	}
	if err := c.callAPI(r, s, http.MethodPut, api.Prefix+"/freezes/"+url.PathEscape(scope), req, nil); err != nil {
		backTo(w, r, "/settings/windows", "error", "Freeze not set: "+errorText(err))
		return
	}
	backTo(w, r, "/settings/windows", "ok", "Froze "+scope+": deployments in flight hold before their next cluster change; rollbacks go through.")
}

func (c *Console) liftFreeze(w http.ResponseWriter, r *http.Request, s *session) {
	scope := r.PostForm.Get("scope")
	if err := c.callAPI(r, s, http.MethodDelete, api.Prefix+"/freezes/"+url.PathEscape(scope), nil, nil); err != nil {
		backTo(w, r, "/settings/windows", "error", "Freeze of "+scope+" not lifted: "+errorText(err))
		return
	}
	backTo(w, r, "/settings/windows", "ok", "Lifted the freeze of "+scope+".")
}
