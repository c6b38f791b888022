package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/sortie-cd/sortie/store"
)

// scmInfo is where a deployment comes from, as Armory's --with-scm read it
// from GitHub Actions' variables and --with-scm-file from a JSON file with
// the same keys (armory-cli cmd/sourceControl: sha, reference,
// referenceName, repository, principal, server, event).
type scmInfo struct {
	Type          string `json:"type,omitempty"`
	Event         string `json:"event,omitempty"`
	Reference     string `json:"reference,omitempty"`
	ReferenceName string `json:"referenceName,omitempty"`
	Principal     string `json:"principal,omitempty"`
	Sha           string `json:"sha,omitempty"`
	Repository    string `json:"repository,omitempty"`
	Server        string `json:"server,omitempty"`
}

// readSCM reads --with-scm-file, else with --with-scm the GITHUB_*
// variables; nil when neither is given.
func readSCM(opts DeployStartOptions) (*scmInfo, error) {
	if opts.SCMFile != "" {
		b, err := os.ReadFile(opts.SCMFile)
		if err != nil {
			return nil, fmt.Errorf("read --with-scm-file: %w", err)
		}
		var s scmInfo
		if err := json.Unmarshal(b, &s); err != nil {
			return nil, fmt.Errorf("%s: not a JSON object of sha, referenceName, repository, principal...: %w", opts.SCMFile, err)
		}
		return &s, nil
	}
	if !opts.WithSCM {
		return nil, nil
	}
	return &scmInfo{
		Type:          "github",
		Event:         os.Getenv("GITHUB_EVENT_NAME"),
		Reference:     os.Getenv("GITHUB_REF_TYPE"),
		ReferenceName: os.Getenv("GITHUB_REF_NAME"),
		Principal:     os.Getenv("GITHUB_ACTOR"),
		Sha:           os.Getenv("GITHUB_SHA"),
		Repository:    os.Getenv("GITHUB_REPOSITORY"),
		Server:        os.Getenv("GITHUB_SERVER_URL"),
	}, nil
}

// commit is s as the server records it.
func (s *scmInfo) commit() *store.Commit {
	return &store.Commit{Sha: s.Sha, Branch: s.ReferenceName, Repository: s.Repository, Actor: s.Principal, Server: s.Server, Event: s.Event}
}

// commitText is "repository@branch (sha) by actor" of a recorded commit.
func commitText(c *store.Commit) string {
	return (&scmInfo{Sha: c.Sha, ReferenceName: c.Branch, Repository: c.Repository, Principal: c.Actor}).summary()
}

// summary is "repository@branch (sha) by actor", leaving out what is unknown.
func (s *scmInfo) summary() string {
	var b strings.Builder
	b.WriteString(firstOf(s.Repository, "?"))
	if s.ReferenceName != "" {
		b.WriteString("@" + s.ReferenceName)
	}
	if s.Sha != "" {
		fmt.Fprintf(&b, " (%s)", s.Sha)
	}
	if s.Principal != "" {
		b.WriteString(" by " + s.Principal)
	}
	return b.String()
}
