package auth_test

import (
	"errors"
	"testing"

	"github.com/sortie-cd/sortie/auth"
)

func TestStreamLimit(t *testing.T) {
	l := auth.NewStreamLimit(2)
	viewer := auth.Principal{Tenant: "main", ClientID: "v"}
	r1, err := l.Acquire(viewer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Acquire(viewer); err != nil {
		t.Fatal(err)
	}
	var se *auth.StreamsError
	if _, err := l.Acquire(viewer); !errors.As(err, &se) || se.Max != 2 {
		t.Fatalf("third stream: %v, want a *StreamsError", err)
	}
	// The same client id in another tenant is another principal.
	if _, err := l.Acquire(auth.Principal{Tenant: "other", ClientID: "v"}); err != nil {
		t.Errorf("another tenant's principal: %v", err)
	}
	r1()
	r1() // a second release frees nothing more
	if _, err := l.Acquire(viewer); err != nil {
		t.Fatalf("after a release: %v", err)
	}
	if _, err := l.Acquire(viewer); err == nil {
		t.Error("a double release freed two slots")
	}
}
