package console

import (
	"fmt"
	"strconv"

	"github.com/sortie-cd/sortie/pipeline"
)

// Graph is the pipeline drawn as an SVG: the trigger, then the targets in
// waves (a target's wave is one more than its deepest dependency's), with
// an edge for each dependsOn. Laid out here, on the server, so the page
// needs no layout script.
type Graph struct {
	Width, Height int
	Nodes         []Node
	Edges         []Edge
}

// Node is a box of the graph.
type Node struct {
	X, Y, W, H int
	Name       string
	Label      string
	Status     pipeline.Status
	Sub        string
	Href       string
	Selected   bool
	Trigger    bool
	Gates      []Gate
}

// Gate is a before- or after-deployment item of a target, one row of its
// node.
type Gate struct {
	Y      int
	Label  string
	Status pipeline.Status
}

// Edge is a dependsOn arrow, as an SVG path.
type Edge struct {
	D      string
	Status pipeline.Status
}

const (
	colWidth   = 250
	nodeWidth  = 200
	nodeHeader = 56
	gateRow    = 18
	rowGap     = 22
	margin     = 16
)

// layoutGraph lays out the targets of st. href gives the link of a target.
func layoutGraph(st *pipeline.State, startedBy string, selected string, href func(string) string) Graph {
	wave := map[string]int{}
	running := map[string]bool{}
	for _, t := range st.Targets {
		running[t.Name] = true
	}
	var depth func(name string, seen map[string]bool) int
	depth = func(name string, seen map[string]bool) int {
		if w, ok := wave[name]; ok {
			return w
		}
		if seen[name] {
			return 1 // a cycle cannot pass validation; stay finite anyway
		}
		seen[name] = true
		w := 1
		if ts := st.Spec.Target(name); ts != nil {
			for _, d := range ts.DependsOn {
				if running[d] {
					w = max(w, depth(d, seen)+1)
				}
			}
		}
		wave[name] = w
		return w
	}
	columns := [][]int{nil}
	for i, t := range st.Targets {
		w := depth(t.Name, map[string]bool{})
		for len(columns) <= w {
			columns = append(columns, nil)
		}
		columns[w] = append(columns[w], i)
	}

	var g Graph
	pos := map[string]int{} // node index by target name
	heights := make([]int, len(columns))
	for w, col := range columns[1:] {
		y := margin
		for _, i := range col {
			t := &st.Targets[i]
			n := Node{
				X: margin + (w+1)*colWidth, Y: y, W: nodeWidth,
				Name: t.Name, Label: clip(t.Name, 22), Status: t.Status,
				Href: href(t.Name), Selected: t.Name == selected,
				Sub: targetSub(st, t),
			}
			gy := y + nodeHeader
			for _, s := range t.Steps {
				if s.Group != pipeline.GroupBefore && s.Group != pipeline.GroupAfter {
					continue
				}
				prefix := "before: "
				if s.Group == pipeline.GroupAfter {
					prefix = "after: "
				}
				n.Gates = append(n.Gates, Gate{Y: gy + 13, Label: clip(prefix+stepTitle(st, t.Name, &s), 28), Status: s.Status})
				gy += gateRow
			}
			n.H = gy - y + 8
			pos[t.Name] = len(g.Nodes)
			g.Nodes = append(g.Nodes, n)
			y += n.H + rowGap
		}
		heights[w+1] = y
	}
	tallest := margin + nodeHeader + rowGap
	for _, h := range heights {
		tallest = max(tallest, h)
	}
	trigger := Node{X: margin, Y: max(margin, (tallest-rowGap)/2-nodeHeader/2), W: 170, H: nodeHeader,
		Label: "trigger", Sub: clip("by "+startedBy, 24), Status: st.Status, Trigger: true}
	g.Nodes = append(g.Nodes, trigger)
	ti := len(g.Nodes) - 1

	for _, t := range st.Targets {
		to := g.Nodes[pos[t.Name]]
		var from []int
		if ts := st.Spec.Target(t.Name); ts != nil {
			for _, d := range ts.DependsOn {
				if i, ok := pos[d]; ok {
					from = append(from, i)
				}
			}
		}
		if len(from) == 0 {
			from = []int{ti}
		}
		for _, i := range from {
			f := g.Nodes[i]
			x1, y1 := f.X+f.W, f.Y+min(f.H, nodeHeader)/2
			x2, y2 := to.X, to.Y+nodeHeader/2
			mid := (x1 + x2) / 2
			g.Edges = append(g.Edges, Edge{
				D:      fmt.Sprintf("M%d %d C%d %d %d %d %d %d", x1, y1, mid, y1, mid, y2, x2-6, y2),
				Status: f.Status,
			})
		}
	}
	g.Width = margin + len(columns)*colWidth
	g.Height = tallest
	return g
}

// targetSub is a target node's second line: its strategy and weight.
func targetSub(st *pipeline.State, t *pipeline.TargetState) string {
	s := "straight to 100%"
	if ts := st.Spec.Target(t.Name); ts != nil {
		switch {
		case ts.FirstDeployment:
			s = "first deployment"
		case ts.Strategy.Canary != nil:
			s = "canary " + ts.Strategy.Name
		case ts.Strategy.BlueGreen != nil:
			s = "blue/green " + ts.Strategy.Name
		}
	}
	if t.RequestedWeight > 0 || t.AchievedWeight > 0 {
		s += " · " + strconv.Itoa(t.AchievedWeight) + "/" + strconv.Itoa(t.RequestedWeight) + "%"
	}
	return clip(s, 30)
}

func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
