package cli

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/sortie-cd/sortie/api"
)

// Armory's RBAC file for `armory config apply` (docs.armory.io,
// cd-as-a-service/tasks/iam/create-role, tenants/add-tenants, delete-role):
//
//	allowAutoDelete: true
//	tenants: [main, finance]
//	roles:
//	  - name: Deployer Finance
//	    tenant: finance          # absent: every tenant of the document
//	    grants:
//	      - {type: api, resource: deployment, permission: full}
//
// Each role becomes a Sortie custom role of its tenant; a resource maps onto
// Sortie's grants as armoryResources says.
type armoryConfig struct {
	AllowAutoDelete bool         `yaml:"allowAutoDelete"`
	Tenants         []string     `yaml:"tenants"`
	Roles           []armoryRole `yaml:"roles"`
}

type armoryRole struct {
	Name   string        `yaml:"name"`
	Tenant string        `yaml:"tenant,omitempty"`
	Grants []armoryGrant `yaml:"grants"`
}

type armoryGrant struct {
	Type       string `yaml:"type"`
	Resource   string `yaml:"resource"`
	Permission string `yaml:"permission"`
}

// armoryResources maps an api grant's resource onto Sortie's grants.
var armoryResources = map[string][]string{
	"deployment": {"read", "deploy", "approve"},
	"tenant":     {"read", "deploy", "approve", "admin"},
}

// armorySystemOnly are resources Sortie gives only through a system role:
// a role granting one is that system role (organization), or holds the
// rest of its grants and leaves the agent connection to the agent role
// (agentHub). Either way config apply says so.
var armorySystemOnly = map[string]string{
	"organization": "organization-admin",
	"agentHub":     "agent",
	"agent-hub":    "agent",
}

// armorySlug is an Armory name as a Sortie name: Armory's tenants and roles
// had capitals and spaces ("Flagship Team Member"), Sortie's are lower-case
// letters, digits, '.', '_' and '-' ("flagship-team-member").
func armorySlug(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(strings.TrimSpace(name)) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '.', r == '_':
			b.WriteRune(r)
			dash = false
		case !dash && b.Len() > 0:
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.TrimSuffix(b.String(), "-")
}

// isArmoryConfig reports whether doc is Armory's format: tenants as plain
// names, or top-level roles.
func isArmoryConfig(doc *yaml.Node) bool {
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	if doc.Kind != yaml.MappingNode {
		return false
	}
	for i := 0; i+1 < len(doc.Content); i += 2 {
		k, v := doc.Content[i].Value, doc.Content[i+1]
		if k == "roles" {
			return true
		}
		if k == "tenants" && v.Kind == yaml.SequenceNode && len(v.Content) > 0 && v.Content[0].Kind == yaml.ScalarNode {
			return true
		}
	}
	return false
}

// fromArmoryConfig converts Armory's document (its node, for positions)
// into Sortie's; every problem names its line and column.
// names maps the Sortie names it made back to the document's; notes say
// what became of grants only Sortie's system roles give.
func fromArmoryConfig(file string, doc *yaml.Node) (cfg api.Config, names map[string]string, notes []string, err error) {
	var ac armoryConfig
	if err := doc.Decode(&ac); err != nil {
		return api.Config{}, nil, nil, fmt.Errorf("%s: %w", file, err)
	}
	names = map[string]string{}
	for i, t := range ac.Tenants {
		ac.Tenants[i] = armorySlug(t)
		names[ac.Tenants[i]] = t
	}
	for i, r := range ac.Roles {
		ac.Roles[i].Name, ac.Roles[i].Tenant = armorySlug(r.Name), armorySlug(r.Tenant)
		names[ac.Roles[i].Name] = r.Name
		names[ac.Roles[i].Tenant] = r.Tenant
	}
	roleNodes := armoryRoleNodes(doc)
	var problems []string
	tenants := []string{}
	addTenant := func(t string) {
		if !slices.Contains(tenants, t) {
			tenants = append(tenants, t)
		}
	}
	for _, t := range ac.Tenants {
		addTenant(t)
	}
	for _, r := range ac.Roles {
		if r.Tenant != "" {
			addTenant(r.Tenant)
		}
	}
	if len(tenants) == 0 {
		addTenant("main")
	}
	roles := map[string][]api.RoleConfig{}
	for i, r := range ac.Roles {
		pos := func(j int, key string) string {
			n := roleNodes[i].grant(j, key)
			return fmt.Sprintf("%s:%d:%d", file, n.Line, n.Column)
		}
		var grants, system []string
		for j, g := range r.Grants {
			switch {
			case g.Type != "api":
				problems = append(problems, fmt.Sprintf("%s: role %q: grant type %q is not known (Armory's only type is api)", pos(j, "type"), names[r.Name], g.Type))
				continue
			case g.Permission != "" && g.Permission != "full":
				problems = append(problems, fmt.Sprintf("%s: role %q: permission %q is not known (Armory's only permission is full)", pos(j, "permission"), names[r.Name], g.Permission))
				continue
			}
			if sys, ok := armorySystemOnly[g.Resource]; ok {
				if !slices.Contains(system, sys) {
					system = append(system, sys)
				}
				continue
			}
			m, ok := armoryResources[g.Resource]
			if !ok {
				problems = append(problems, fmt.Sprintf("%s: role %q: resource %q is not known (resources: deployment, tenant, organization, agentHub)", pos(j, "resource"), names[r.Name], g.Resource))
				continue
			}
			for _, s := range m {
				if !slices.Contains(grants, s) {
					grants = append(grants, s)
				}
			}
		}
		switch {
		case slices.Contains(system, "organization-admin"):
			notes = append(notes, fmt.Sprintf("Role %s is Sortie's system role organization-admin (organization-wide power is no custom role): give that role to its members, e.g. 'sortie credentials create NAME --role organization-admin'", names[r.Name]))
			continue
		case slices.Contains(system, "agent") && len(grants) == 0:
			notes = append(notes, fmt.Sprintf("Role %s is Sortie's system role agent: give that role to the credentials agents connect with ('sortie credentials create NAME --role agent')", names[r.Name]))
			continue
		case slices.Contains(system, "agent"):
			notes = append(notes, fmt.Sprintf("Role %s: its agentHub grant is Sortie's system role agent, which only agent credentials hold; the role keeps its other grants", names[r.Name]))
		}
		in := []string{r.Tenant}
		if r.Tenant == "" {
			in = tenants // organization-wide: the role in every tenant
		}
		for _, t := range in {
			roles[t] = append(roles[t], api.RoleConfig{Name: r.Name, Grants: grants})
		}
	}
	if len(problems) > 0 {
		return api.Config{}, nil, nil, fmt.Errorf("%s", strings.Join(problems, "\n"))
	}
	cfg = api.Config{AllowAutoDelete: ac.AllowAutoDelete}
	for _, t := range tenants {
		cfg.Tenants = append(cfg.Tenants, api.TenantConfig{Name: t, Roles: roles[t]})
	}
	return cfg, names, notes, nil
}

// roleNode is one role's YAML node, for the positions of its grants.
type roleNode struct{ n *yaml.Node }

func (r roleNode) grant(j int, key string) *yaml.Node {
	if r.n == nil {
		return &yaml.Node{}
	}
	gs := mapValue(r.n, "grants")
	if gs == nil || j >= len(gs.Content) {
		return r.n
	}
	if v := mapValue(gs.Content[j], key); v != nil {
		return v
	}
	return gs.Content[j]
}

func armoryRoleNodes(doc *yaml.Node) []roleNode {
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	var out []roleNode
	if rs := mapValue(doc, "roles"); rs != nil {
		for _, n := range rs.Content {
			out = append(out, roleNode{n})
		}
	}
	return out
}

func mapValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// armoryChange rewrites Sortie's change lines as Armory printed them
// ("Created tenant: x", "Created role: y", "Updated role: y").
func armoryChange(ch string, names map[string]string) string {
	f := strings.Fields(ch)
	if len(f) < 3 {
		return ch
	}
	verb := map[string]string{"created": "Created", "updated": "Updated", "deleted": "Deleted"}[f[2]]
	if verb == "" {
		return ch
	}
	name := f[1]
	if f[0] == "role" {
		if _, n, ok := strings.Cut(name, "/"); ok {
			name = n
		}
	}
	if orig, ok := names[name]; ok && orig != "" {
		name = orig
	}
	return fmt.Sprintf("%s %s: %s", verb, f[0], name)
}

// writeArmoryConfig writes cfg as Armory's RBAC file: tenants by name, and
// each role whose grants Armory could say (deployment or tenant, full).
func writeArmoryConfig(w io.Writer, cfg api.Config) error {
	out := armoryConfig{AllowAutoDelete: cfg.AllowAutoDelete, Tenants: []string{}, Roles: []armoryRole{}}
	var skipped []string
	for _, t := range cfg.Tenants {
		out.Tenants = append(out.Tenants, t.Name)
		for _, r := range t.Roles {
			var res string
			switch {
			case slices.Contains(r.Grants, "admin"):
				res = "tenant"
			case slices.Contains(r.Grants, "deploy"):
				res = "deployment"
			default:
				skipped = append(skipped, fmt.Sprintf("# role %s/%s (grants %s) has no Armory equivalent; see 'sortie config get'", t.Name, r.Name, strings.Join(r.Grants, ", ")))
				continue
			}
			out.Roles = append(out.Roles, armoryRole{Name: r.Name, Tenant: t.Name, Grants: []armoryGrant{{Type: "api", Resource: res, Permission: "full"}}})
		}
	}
	for _, s := range skipped {
		fmt.Fprintln(w, s)
	}
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(out); err != nil {
		return err
	}
	return enc.Close()
}
