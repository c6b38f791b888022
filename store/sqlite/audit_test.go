package sqlite

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/sortie-cd/sortie/store"
)

// TestAuditAppendOnly: even SQL that bypasses the Store cannot change or
// remove an audit entry.
func TestAuditAppendOnly(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "sortie.db"), Options{})
	if err := s.AppendAudit(t.Context(), store.AuditEntry{Tenant: store.DefaultTenant, Actor: "alice", Action: "login"}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`UPDATE audit SET actor = 'mallory'`, `DELETE FROM audit`} {
		if _, err := s.write.ExecContext(t.Context(), q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v, want a refusal", q, err)
		}
	}
	got, err := s.ListAudit(t.Context(), store.DefaultTenant, store.AuditFilter{})
	if err != nil || len(got) != 1 || got[0].Actor != "alice" {
		t.Errorf("audit after the refused changes: %+v, %v", got, err)
	}
}
