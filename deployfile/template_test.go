package deployfile

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRender(t *testing.T) {
	vars := Variables{
		Armory:  map[string]string{"applicationName": "web", "callbackUri": "https://s/cb"},
		Context: map[string]string{"suite": "smoke"},
	}
	for _, tc := range []struct {
		in, want, err string
	}{
		{in: "plain {braces} and {{ armory.applicationName }}", want: "plain {braces} and web"},
		{in: "{{sortie.applicationName}}/{{armory.callbackUri}}/callback", want: "web/https://s/cb/callback"},
		{in: `{"suite":"{{context.suite}}"}`, want: `{"suite":"smoke"}`},
		{in: "Bearer {{secrets.ci_token}}", want: "Bearer {{secrets.ci_token}}"},
		{in: "{{context.env}}", err: `{{context.env}} is not defined: no context key "env"`},
		{in: "{{armory.appName}}", err: `{{armory.appName}} is not a variable Sortie provides`},
		{in: "{{armory.deploymentId}}", err: `{{armory.deploymentId}} has no value here`},
		{in: "{{ .Values.x }}", err: `{{.Values.x}} is not a variable`},
		{in: "{{env.HOME}}", err: `"env" is not a variable namespace`},
		{in: "oops {{armory.applicationName", err: `"{{" is never closed`},
	} {
		got, err := Render(tc.in, vars)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Render(%q) error = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Render(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestRenderSecrets(t *testing.T) {
	secret := func(name string) (string, bool) { return map[string]string{"tok": "s3cr3t"}[name], name == "tok" }
	got, err := Render("Bearer {{ secrets.tok }}", Variables{Secret: secret})
	if err != nil || got != "Bearer s3cr3t" {
		t.Errorf("got %q, %v", got, err)
	}
	if _, err := Render("{{secrets.other}}", Variables{Secret: secret}); err == nil || !strings.Contains(err.Error(), `no secret "other"`) {
		t.Errorf("unknown secret: %v", err)
	}
}

func TestParseTemplate(t *testing.T) {
	vars, errs := ParseTemplate("a {{armory.preview.web}} b {{ context.x }} {{secrets.y-z}}")
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	want := []Var{{"armory", "preview.web", 2}, {"context", "x", 27}, {"secrets", "y-z", 43}}
	if diff := cmp.Diff(want, vars); diff != "" {
		t.Error(diff)
	}
}

func TestSecrets(t *testing.T) {
	res := Parse("d.yml", []byte(head+s1+`webhooks:
  - name: w
    method: GET
    uriTemplate: "https://{{secrets.host}}/x"
    headers:
      - key: Authorization
        value: "{{secrets.token}} {{secrets.host}}"
`))
	if diff := cmp.Diff([]string{"host", "token"}, res.File.Secrets()); diff != "" {
		t.Error(diff)
	}
}
