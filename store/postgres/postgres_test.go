package postgres

import (
	"context"
	"os"
	"testing"

	"github.com/sortie-cd/sortie/store"
	"github.com/sortie-cd/sortie/store/postgres/pgtest"
	"github.com/sortie-cd/sortie/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func open(t testing.TB, url string, opts Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), url, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) (store.Store, func(t *testing.T) store.Store) {
		url := pgtest.Database(t)
		return open(t, url, Options{}), func(t *testing.T) store.Store { return open(t, url, Options{}) }
	})
}
