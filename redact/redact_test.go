package redact

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
)

func TestMaskEveryEncoding(t *testing.T) {
	const secret = `p&ss/wörd"<x>+=?~ ok`
	jsonEsc := func(v string) string { b, _ := json.Marshal(v); return string(b[1 : len(b)-1]) }
	cases := map[string]string{
		"raw":               secret,
		"json":              jsonEsc(secret),
		"query":             url.QueryEscape(secret),
		"query lower hex":   strings.ToLower(url.QueryEscape(secret)),
		"path":              url.PathEscape(secret),
		"base64 std":        base64.StdEncoding.EncodeToString([]byte(secret)),
		"base64 url":        base64.URLEncoding.EncodeToString([]byte(secret)),
		"base64 std raw":    base64.RawStdEncoding.EncodeToString([]byte(secret)),
		"base64 url raw":    base64.RawURLEncoding.EncodeToString([]byte(secret)),
		"json without html": strings.NewReplacer(`\u0026`, "&", `\u003c`, "<", `\u003e`, ">").Replace(jsonEsc(secret)),
	}
	var s Set
	s.Add(secret)
	for name, form := range cases {
		if name != "raw" && form == secret {
			t.Fatalf("%s: the test's form equals the raw value", name)
		}
		got := s.Mask("echo: " + form + " end")
		if strings.Contains(got, form) || got != "echo: "+Text+" end" {
			t.Errorf("%s form %q: masked to %q", name, form, got)
		}
	}
}

func TestEmptySetMasksNothing(t *testing.T) {
	var s Set
	s.Add("")
	if !s.Empty() || s.Mask("abc") != "abc" {
		t.Fatal("an empty set changed text")
	}
}
