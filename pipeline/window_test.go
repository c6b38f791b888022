package pipeline

import (
	"strings"
	"testing"
	"time"
)

func at(t *testing.T, zone, wall string) time.Time {
	t.Helper()
	loc, err := time.LoadLocation(zone)
	if err != nil {
		t.Fatal(err)
	}
	v, err := time.ParseInLocation("2006-01-02 15:04", wall, loc)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestWindowOpenAndNextOpen(t *testing.T) {
	office := Window{Name: "office", Days: []string{"mon", "tue", "wed", "thu", "fri"}, Start: "09:00", End: "17:00", TimeZone: "Europe/Paris"}
	night := Window{Name: "night", Start: "22:00", End: "02:00", TimeZone: "UTC"}
	weekendNight := Window{Name: "sat-night", Days: []string{"sat"}, Start: "23:00", End: "01:00"}
	xmas := Window{Name: "xmas", Dates: []string{"2026-12-24"}}
	// Europe/Paris moves from 02:00 to 03:00 on 2026-03-29, back from 03:00
	// to 02:00 on 2026-10-25; New York from 02:00 to 03:00 on 2026-03-08.
	early := Window{Name: "early", Start: "02:30", End: "04:00", TimeZone: "Europe/Paris"}
	nyc := Window{Name: "nyc", Days: []string{"mon"}, Start: "09:00", End: "10:00", TimeZone: "America/New_York"}
	cases := []struct {
		name string
		w    Window
		now  time.Time
		open bool
		next time.Time // zero: the window is open (next == now)
	}{
		{"office hours on a weekday", office, at(t, "Europe/Paris", "2026-03-04 10:00"), true, time.Time{}},
		{"opening minute is open", office, at(t, "Europe/Paris", "2026-03-04 09:00"), true, time.Time{}},
		{"closing minute is closed", office, at(t, "Europe/Paris", "2026-03-04 17:00"), false, at(t, "Europe/Paris", "2026-03-05 09:00")},
		{"sunday waits for monday", office, at(t, "UTC", "2026-03-01 09:00"), false, at(t, "Europe/Paris", "2026-03-02 09:00")},
		{"friday evening waits for monday", office, at(t, "Europe/Paris", "2026-03-06 18:00"), false, at(t, "Europe/Paris", "2026-03-09 09:00")},
		{"the zone counts, not UTC", office, at(t, "UTC", "2026-03-04 08:30"), true, time.Time{}},
		{"after midnight of a window begun the day before", night, at(t, "UTC", "2026-03-04 01:59"), true, time.Time{}},
		{"before a midnight-crossing window", night, at(t, "UTC", "2026-03-04 12:00"), false, at(t, "UTC", "2026-03-04 22:00")},
		{"a crossing window's day is the day it begins", weekendNight, at(t, "UTC", "2026-03-08 00:30"), true, time.Time{}},
		{"and not the day after", weekendNight, at(t, "UTC", "2026-03-08 23:30"), false, at(t, "UTC", "2026-03-14 23:00")},
		{"a calendar date", xmas, at(t, "UTC", "2026-12-24 13:00"), true, time.Time{}},
		{"before a calendar date", xmas, at(t, "UTC", "2026-12-01 00:00"), false, at(t, "UTC", "2026-12-24 00:00")},
		{"a past date never opens", xmas, at(t, "UTC", "2026-12-25 00:00"), false, time.Time{}},
		{"an opening skipped by spring forward moves to 03:30", early, at(t, "Europe/Paris", "2026-03-29 01:00"), false, at(t, "Europe/Paris", "2026-03-29 03:30")},
		{"wall-clock hours kept after fall back: 03:45 CET", early, at(t, "UTC", "2026-10-25 02:45"), true, time.Time{}},
		{"and closed at 04:00 CET", early, at(t, "UTC", "2026-10-25 03:00"), false, at(t, "Europe/Paris", "2026-10-26 02:30")},
		{"a zone's own DST: 09:00 New York is 13:00 UTC after the change", nyc, at(t, "UTC", "2026-03-09 13:30"), true, time.Time{}},
		{"and 14:00 UTC before it", nyc, at(t, "UTC", "2026-03-02 13:30"), false, at(t, "UTC", "2026-03-02 14:00")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.w.Validate(); err != nil {
				t.Fatal(err)
			}
			if got := c.w.Open(c.now); got != c.open {
				t.Errorf("Open(%v) = %t, want %t", c.now, got, c.open)
			}
			want := c.next
			if c.open {
				want = c.now
			}
			if got := c.w.NextOpen(c.now); !got.Equal(want) {
				t.Errorf("NextOpen(%v) = %v, want %v", c.now, got, want)
			}
		})
	}
}

func TestClosedWindowOfSeveral(t *testing.T) {
	// Both must be open: weekdays 09-17 and 12-14 somewhere else.
	ws := []Window{
		{Name: "office", Days: []string{"mon", "tue", "wed", "thu", "fri"}, Start: "09:00", End: "17:00", TimeZone: "Europe/Paris"},
		{Name: "lunch", Start: "12:00", End: "14:00", TimeZone: "UTC", Targets: []string{"prod"}},
	}
	now := at(t, "UTC", "2026-03-01 09:00") // a Sunday
	w, opens := closedWindow(ws, "prod", now)
	if w == nil || w.Name != "office" || !opens.Equal(at(t, "UTC", "2026-03-02 12:00")) {
		t.Errorf("prod: closed %v until %v, want office until Monday 12:00 UTC", w, opens)
	}
	w, opens = closedWindow(ws, "staging", now)
	if w == nil || !opens.Equal(at(t, "Europe/Paris", "2026-03-02 09:00")) {
		t.Errorf("staging (lunch does not apply): closed %v until %v, want Monday 09:00 Paris", w, opens)
	}
	if w, _ := closedWindow(ws, "prod", at(t, "UTC", "2026-03-04 12:30")); w != nil {
		t.Errorf("prod on a Wednesday at 12:30 UTC: %v closed, want all open", w)
	}
}

func TestWindowValidate(t *testing.T) {
	bad := Window{Name: "w", Days: []string{"monday"}, Dates: []string{"24/12"}, Start: "9:00", TimeZone: "Mars/Olympus", Mode: "wait"}
	err := bad.Validate()
	if err == nil || ErrorCode(err) != CodeInvalid {
		t.Fatalf("Validate = %v, want an invalid error", err)
	}
	for _, want := range []string{`day "monday"`, `date "24/12"`, "both start and end", `time "9:00"`, `time zone "Mars/Olympus"`, `mode "wait"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	s := spec(target("prod", straight))
	s.Windows = []Window{{Name: "w", Targets: []string{"qa"}}}
	if err := s.Validate(); err == nil || !strings.Contains(err.Error(), `window "w" names unknown target "qa"`) {
		t.Errorf("Spec.Validate = %v, want the unknown target named", err)
	}
}

func TestWindowRefusingLaterTargetCancelsIt(t *testing.T) {
	s := spec(target("staging", straight), target("dr", straight, "staging"), target("dr-eu", straight, "dr"))
	s.Windows = []Window{{Name: "dr-hours", Targets: []string{"dr"}, Start: "20:00", End: "21:00", Mode: WindowRefuse}}
	p, _ := New("p1", s, t0)
	p, _, _, err := Transition(p, Start{By: ci}, t0)
	if err != nil {
		t.Fatalf("Start: %v (dr does not start at once, so its window does not refuse the start)", err)
	}
	for _, step := range []string{"canary/0", "finalize"} {
		p, _, _, _ = Transition(p, CommandResult{CommandID: "p1/staging/" + step, Success: true, AchievedWeight: 100}, t0)
	}
	dr, eu := p.Target("dr"), p.Target("dr-eu")
	if dr.Status != StatusCancelled || !strings.Contains(dr.Message, "not started: outside deploy window dr-hours") {
		t.Errorf("dr: %s %q, want CANCELLED outside its window", dr.Status, dr.Message)
	}
	if eu.Status != StatusCancelled || p.Status != StatusFailed {
		t.Errorf("dr-eu %s, pipeline %s; want CANCELLED, FAILED", eu.Status, p.Status)
	}
}

func TestTheFileSaysWhatAWindowWithoutModeDoes(t *testing.T) {
	closed := Window{Name: "never", Dates: []string{"2000-01-01"}}
	for _, c := range []struct {
		name   string
		file   WindowMode
		window WindowMode
		refuse bool
	}{
		{"neither says: queue", "", "", false},
		{"the file says refuse", WindowRefuse, "", true},
		{"the window's own mode wins", WindowRefuse, WindowQueue, false},
		{"a refusing window whatever the file", WindowQueue, WindowRefuse, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := spec(target("prod", straight))
			w := closed
			w.Mode = c.window
			s.Windows, s.OutsideWindow = []Window{w}, c.file
			p, err := New("p1", s, t0)
			if err != nil {
				t.Fatal(err)
			}
			p, _, _, err = Transition(p, Start{By: ci}, t0)
			switch {
			case c.refuse && (ErrorCode(err) != CodeConflict || !strings.Contains(err.Error(), "outside deploy window never")):
				t.Errorf("Start: %v, want refused", err)
			case !c.refuse && (err != nil || p.Target("prod").Held == ""):
				t.Errorf("Start: %v, prod held %q; want it waiting", err, p.Target("prod").Held)
			}
		})
	}
	bad := spec(target("prod", straight))
	bad.OutsideWindow = "wait"
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), `outsideWindow "wait"`) {
		t.Errorf("Validate = %v", err)
	}
}

// A freeze holds a blue/green before it switches the active service and
// before it finalizes, but not its gates.
func TestFreezeHoldsBlueGreenSwitches(t *testing.T) {
	s := spec(target("prod", blueGreen([]Step{hook("smoke")}, nil)))
	p, _ := New("p1", s, t0)
	step := func(ev Event) {
		t.Helper()
		var err error
		if p, _, _, err = Transition(p, ev, t0); err != nil {
			t.Fatal(err)
		}
	}
	step(Start{By: ci})
	step(SetFreeze{Freeze: Freeze{Scope: "tenant", Reason: "r"}, By: admin})
	step(CommandResult{CommandID: "p1/prod/deployPreview", Success: true})
	if st := p.Target("prod").Step("redirectTrafficAfter/0"); st.Status != StatusRunning {
		t.Fatalf("the webhook gate is %s under a freeze, want RUNNING", st.Status)
	}
	step(WebhookCallback{CommandID: "p1/prod/redirectTrafficAfter/0", Success: true, By: webhook})
	if tg := p.Target("prod"); tg.Step("redirectActive").Status != StatusQueued || !strings.Contains(tg.Held, "held before redirectActive") {
		t.Fatalf("redirectActive %s, held %q; want QUEUED and held", tg.Step("redirectActive").Status, tg.Held)
	}
	step(LiftFreeze{Scope: "tenant", By: admin})
	step(SetFreeze{Freeze: Freeze{Scope: "tenant", Reason: "r"}, By: admin})
	step(CommandResult{CommandID: "p1/prod/redirectActive", Success: true})
	if tg := p.Target("prod"); tg.Step("finalize").Status != StatusQueued || !strings.Contains(tg.Held, "held before finalize") {
		t.Fatalf("finalize %s, held %q; want QUEUED and held", tg.Step("finalize").Status, tg.Held)
	}
}
