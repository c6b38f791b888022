package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"path/filepath"

	"github.com/sortie-cd/sortie/api"
	"github.com/sortie-cd/sortie/secrets"
	"github.com/sortie-cd/sortie/store"
)

// openSecrets opens the tenants' secrets under the configured master key,
// else <data-dir>/master.key (created 0600 on first start).
func openSecrets(ctx context.Context, cfg Config, st store.Store, log *slog.Logger) (*secrets.Service, error) {
	return secrets.New(ctx, secrets.Options{
		Store:              st,
		MasterKey:          cfg.MasterKey,
		PreviousMasterKeys: cfg.PreviousMasterKeys,
		KeyPath:            filepath.Join(cfg.DataDir, secrets.KeyFile),
		Log:                log,
	})
}

// secretsAPI gives the secrets service's refusals their HTTP meaning.
type secretsAPI struct{ *secrets.Service }

func (s secretsAPI) RotateMasterKey(ctx context.Context) (string, error) {
	id, err := s.Service.RotateMasterKey(ctx)
	if errors.Is(err, secrets.ErrKeyFromConfig) {
		err = &api.Error{Status: http.StatusConflict, Code: api.CodeConflict, Message: err.Error()}
	}
	return id, err
}
