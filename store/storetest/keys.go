package storetest

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sortie-cd/sortie/store"
)

func testSigningKeys(t *testing.T, open Opener) {
	s, reopen := open(t)
	ctx := t.Context()
	if ks, err := s.ListSigningKeys(ctx); err != nil || len(ks) != 0 {
		t.Fatalf("ListSigningKeys of a new store = %v, %v", ks, err)
	}
	b := store.SigningKey{ID: "20260102T000000Z-b", Sealed: []byte{0, 1, 2, 0xff}, CreatedAt: t0.Add(1)}
	a := store.SigningKey{ID: "20260101T000000Z-a", Sealed: []byte("sealed a"), CreatedAt: t0}
	for _, k := range []store.SigningKey{b, a} {
		if err := s.PutSigningKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutSigningKey(ctx, store.SigningKey{ID: a.ID, Sealed: []byte("other")}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("PutSigningKey of a taken id: %v, want ErrConflict", err)
	}
	if err := s.PutSigningKey(ctx, store.SigningKey{ID: "empty"}); err == nil {
		t.Error("PutSigningKey without a key: no error")
	}
	s2 := reopen(t)
	got, err := s2.ListSigningKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]store.SigningKey{a, b}, got); diff != "" {
		t.Errorf("signing keys after reopen (-want +got):\n%s", diff)
	}
}
