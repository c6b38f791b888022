package pipeline

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// WindowMode is what a start outside a window does.
type WindowMode string

// Window modes.
const (
	// WindowQueue (the default) keeps the target QUEUED until the window
	// opens.
	WindowQueue WindowMode = "queue"
	// WindowRefuse refuses the start, naming the window.
	WindowRefuse WindowMode = "refuse"
)

// Window is a deploy window: when a target may start deploying. It is open
// on the listed days of the week or calendar dates (every day when neither is
// set) from Start to End, wall-clock time in TimeZone; an End not after Start
// runs past midnight into the next day, and no Start and End means the whole
// day. Several windows applying to one target must all be open at once.
type Window struct {
	Name string `json:"name"`
	// Scope says where the window was set, for messages: "tenant",
	// "application web", "target prod", "the deployment file".
	Scope string `json:"scope,omitempty"`
	// Targets are the targets of the pipeline the window applies to; empty
	// means every target.
	Targets []string `json:"targets,omitempty"`
	// Days are lower-case English weekday abbreviations: mon, tue, ... sun.
	Days []string `json:"days,omitempty"`
	// Dates are calendar dates, YYYY-MM-DD.
	Dates []string `json:"dates,omitempty"`
	// Start and End are HH:MM.
	Start string `json:"start,omitempty"`
	End   string `json:"end,omitempty"`
	// TimeZone is an IANA zone name; empty means UTC.
	TimeZone string `json:"timeZone,omitempty"`
	// Mode is what a start outside the window does; empty leaves it to the
	// deployment file (Spec.OutsideWindow), whose default is WindowQueue.
	Mode WindowMode `json:"mode,omitempty"`
}

// FileScope is the Scope of the windows a deployment file sets for its own
// targets; SetWindows leaves them alone.
const FileScope = "the deployment file"

// mode is w's mode in a pipeline of spec.
func (s *Spec) mode(w *Window) WindowMode {
	switch {
	case w.Mode != "":
		return w.Mode
	case s.OutsideWindow != "":
		return s.OutsideWindow
	}
	return WindowQueue
}

var weekdays = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// Validate reports every problem of w at once.
func (w *Window) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if w.Name == "" {
		bad("a window has no name")
	}
	for _, d := range w.Days {
		if !slices.Contains(weekdays, d) {
			bad("day %q is not one of %s", d, strings.Join(weekdays[1:], ", ")+", sun")
		}
	}
	for _, d := range w.Dates {
		if _, err := time.Parse(time.DateOnly, d); err != nil {
			bad("date %q is not YYYY-MM-DD", d)
		}
	}
	if (w.Start == "") != (w.End == "") {
		bad("a window needs both start and end, or neither (the whole day)")
	}
	for _, c := range []string{w.Start, w.End} {
		if _, ok := clock(c); c != "" && !ok {
			bad("time %q is not HH:MM (00:00 to 23:59)", c)
		}
	}
	if _, err := time.LoadLocation(w.TimeZone); err != nil {
		bad("time zone %q is unknown", w.TimeZone)
	}
	switch w.Mode {
	case "", WindowQueue, WindowRefuse:
	default:
		bad("mode %q is neither %q nor %q", w.Mode, WindowQueue, WindowRefuse)
	}
	if len(errs) == 0 {
		return nil
	}
	return &Error{Code: CodeInvalid, Message: fmt.Sprintf("window %q: %v", w.Name, errors.Join(errs...))}
}

// clock parses HH:MM into minutes after midnight.
func clock(s string) (int, bool) {
	t, err := time.Parse("15:04", s)
	if err != nil || len(s) != 5 {
		return 0, false
	}
	return t.Hour()*60 + t.Minute(), true
}

// location is w's zone. Validate refused an unknown one, so a failure here
// means a stored window that no longer loads: UTC is the safe reading.
func (w *Window) location() *time.Location {
	loc, err := time.LoadLocation(w.TimeZone)
	if err != nil {
		return time.UTC
	}
	return loc
}

// opening returns when w's period that begins on the calendar day of day
// (in loc) opens and closes, and whether w has a period that day.
func (w *Window) opening(day time.Time, loc *time.Location) (from, to time.Time, ok bool) {
	y, m, d := day.Date()
	date := time.Date(y, m, d, 0, 0, 0, 0, loc)
	switch {
	case len(w.Dates) > 0 && slices.Contains(w.Dates, date.Format(time.DateOnly)):
	case len(w.Dates) > 0 && len(w.Days) == 0:
		return from, to, false
	case len(w.Days) > 0 && !slices.Contains(w.Days, weekdays[date.Weekday()]):
		return from, to, false
	}
	start, _ := clock(w.Start)
	end, _ := clock(w.End)
	if end <= start {
		end += 24 * 60
	}
	// time.Date normalises a wall time that a DST change skips or repeats,
	// so a window keeps its wall-clock hours across the change.
	from = time.Date(y, m, d, start/60, start%60, 0, 0, loc)
	to = time.Date(y, m, d, end/60, end%60, 0, 0, loc)
	return from, to, true
}

// Open reports whether w is open at t.
func (w *Window) Open(t time.Time) bool {
	loc := w.location()
	lt := t.In(loc)
	for _, day := range []time.Time{lt.AddDate(0, 0, -1), lt} {
		if from, to, ok := w.opening(day, loc); ok && !t.Before(from) && t.Before(to) {
			return true
		}
	}
	return false
}

// NextOpen returns t when w is open at t, else the next time it opens; the
// zero time when it does not open within a year and a day (its dates are
// past).
func (w *Window) NextOpen(t time.Time) time.Time {
	if w.Open(t) {
		return t
	}
	loc := w.location()
	lt := t.In(loc)
	for i := range 367 {
		if from, _, ok := w.opening(lt.AddDate(0, 0, i), loc); ok && from.After(t) {
			return from
		}
	}
	return time.Time{}
}

// String describes w for messages: its name, where it was set, and when it
// is open.
func (w Window) String() string {
	var when []string
	if len(w.Days) > 0 {
		when = append(when, strings.Join(w.Days, ","))
	}
	if len(w.Dates) > 0 {
		when = append(when, strings.Join(w.Dates, ","))
	}
	if w.Start != "" {
		when = append(when, w.Start+"-"+w.End)
	} else {
		when = append(when, "all day")
	}
	zone := w.TimeZone
	if zone == "" {
		zone = "UTC"
	}
	when = append(when, zone)
	s := "deploy window " + w.Name
	if w.Scope != "" {
		s += " of " + w.Scope
	}
	return s + " (" + strings.Join(when, " ") + ")"
}

// appliesTo reports whether w holds target.
func (w *Window) appliesTo(target string) bool {
	return len(w.Targets) == 0 || slices.Contains(w.Targets, target)
}

// closedWindow returns, of the windows that apply to target, one closed at
// now, and when all of them are open together (zero: not within a year).
// It returns nil when all are open now.
func closedWindow(ws []Window, target string, now time.Time) (*Window, time.Time) {
	var first *Window
	t := now
	// Jumping to one window's opening may land where another is closed;
	// a handful of jumps settles any realistic set of windows.
	for range 64 {
		i := slices.IndexFunc(ws, func(w Window) bool { return w.appliesTo(target) && !w.Open(t) })
		if i < 0 {
			return first, t
		}
		if first == nil {
			first = &ws[i]
		}
		if t = ws[i].NextOpen(t); t.IsZero() {
			return first, t
		}
	}
	return first, time.Time{}
}

// opensText says when a closed window opens, in its own zone.
func opensText(w *Window, at time.Time) string {
	if at.IsZero() {
		return "it does not open within a year"
	}
	return "it opens at " + at.In(w.location()).Format("Mon 2006-01-02 15:04 MST")
}

// Freeze stops new starts and holds running pipelines before their next
// step that changes a cluster, until it is lifted or Until passes.
// Rollbacks are never held.
type Freeze struct {
	// Scope is where the freeze was set and its identity: "tenant",
	// "application web", "target prod".
	Scope string `json:"scope"`
	// Targets are the targets of the pipeline it holds; empty means every
	// target.
	Targets []string  `json:"targets,omitempty"`
	Reason  string    `json:"reason"`
	Until   time.Time `json:"until,omitzero"`
	By      string    `json:"by,omitempty"`
	// At is when it was set.
	At time.Time `json:"at,omitzero"`
}

func (f *Freeze) appliesTo(target string) bool {
	return len(f.Targets) == 0 || slices.Contains(f.Targets, target)
}

// String describes f for messages.
func (f Freeze) String() string {
	s := "freeze of " + f.Scope
	if f.Reason != "" {
		s += ": " + f.Reason
	}
	if !f.Until.IsZero() {
		s += " (until " + f.Until.UTC().Format(time.RFC3339) + ")"
	}
	return s
}

// frozen returns the freeze holding target, or nil.
func (s *State) frozen(target string) *Freeze {
	for i := range s.Freezes {
		if s.Freezes[i].appliesTo(target) {
			return &s.Freezes[i]
		}
	}
	return nil
}

// changesCluster reports whether a step of kind k changes the target's
// cluster, and so is held by a freeze.
func (k StepKind) changesCluster() bool {
	switch k {
	case KindSetWeight, KindDeployPreview, KindRedirectActive, KindFinalize, KindExposeServices:
		return true
	}
	return false
}

// RoleBreakGlass is the role, besides the organization and tenant admins,
// that may start a deployment outside its windows and through a freeze. A
// tenant gives it by defining a custom role of that name.
const RoleBreakGlass = "break-glass"

func (p Principal) mayBreakGlass() bool {
	return slices.ContainsFunc(p.Roles, func(r string) bool {
		return r == RoleOrganizationAdmin || r == RoleTenantAdmin || r == RoleBreakGlass
	})
}

// ScopeTenant is the scope of a window or freeze that applies to every
// deployment of its tenant; "application NAME" and "target NAME" are the
// others (ApplicationScope, TargetScope).
const ScopeTenant = "tenant"

// ApplicationScope is the scope of one application's deployments.
func ApplicationScope(name string) string { return "application " + name }

// TargetScope is the scope of one target (by name, in every application).
func TargetScope(name string) string { return "target " + name }

// CheckScope refuses a scope that is none of those.
func CheckScope(scope string) error {
	kind, name, _ := strings.Cut(scope, " ")
	switch {
	case scope == ScopeTenant:
		return nil
	case (kind == "application" || kind == "target") && name != "" && !strings.ContainsAny(name, " \t\n"):
		return nil
	}
	return errorf(CodeInvalid, "scope %q is none of %q, \"application NAME\", \"target NAME\"", scope, ScopeTenant)
}

// ScopeTargets reports whether scope applies to a pipeline of application
// running targets, and which of them it holds (nil: all).
func ScopeTargets(scope, application string, targets []string) (bool, []string) {
	kind, name, _ := strings.Cut(scope, " ")
	switch {
	case scope == ScopeTenant:
		return true, nil
	case kind == "application":
		return name == application, nil
	case kind == "target" && slices.Contains(targets, name):
		return true, []string{name}
	}
	return false, nil
}
