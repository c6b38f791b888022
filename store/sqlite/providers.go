package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/sortie-cd/sortie/store"
	"github.com/sortie-cd/sortie/store/internal/sqlrow"
)

// CreateMetricProvider implements store.Store.
func (s *Store) CreateMetricProvider(ctx context.Context, p store.MetricProvider) error {
	if p.Tenant == "" || p.Name == "" || p.Type == "" {
		return errors.New("sqlite: create metric provider: tenant, name and type are required")
	}
	p.CreatedAt = sqlrow.OrNow(p.CreatedAt, s.nowUTC())
	if err := sqlrow.CheckTimes(p.CreatedAt); err != nil {
		return fmt.Errorf("sqlite: create metric provider %s: %w", p.Name, err)
	}
	config := string(p.Config)
	if config == "" {
		config = "{}"
	}
	_, err := s.write.ExecContext(ctx, `INSERT INTO metric_providers (tenant, name, type, config, created_at)
VALUES (?, ?, ?, ?, ?)`, p.Tenant, p.Name, p.Type, config, p.CreatedAt.UnixNano())
	switch {
	case isUnique(err):
		err = store.ErrConflict
	case isForeignKey(err):
		err = fmt.Errorf("tenant %s: %w", p.Tenant, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("sqlite: create metric provider %s: %w", p.Name, err)
	}
	return nil
}

// GetMetricProvider implements store.Store.
func (s *Store) GetMetricProvider(ctx context.Context, tenant, name string) (*store.MetricProvider, error) {
	p, err := sqlrow.ScanProvider(s.read.QueryRowContext(ctx, `SELECT `+sqlrow.ProviderColumns+` FROM metric_providers WHERE tenant = ? AND name = ?`, tenant, name))
	if errors.Is(err, sql.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get metric provider %s: %w", name, err)
	}
	return &p, nil
}

// ListMetricProviders implements store.Store.
func (s *Store) ListMetricProviders(ctx context.Context, tenant string) ([]store.MetricProvider, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+sqlrow.ProviderColumns+` FROM metric_providers WHERE tenant = ? ORDER BY name`, tenant)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list metric providers: %w", err)
	}
	defer rows.Close()
	var out []store.MetricProvider
	for rows.Next() {
		p, err := sqlrow.ScanProvider(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list metric providers: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list metric providers: %w", err)
	}
	return out, nil
}

// DeleteMetricProvider implements store.Store.
func (s *Store) DeleteMetricProvider(ctx context.Context, tenant, name string) error {
	res, err := s.write.ExecContext(ctx, `DELETE FROM metric_providers WHERE tenant = ? AND name = ?`, tenant, name)
	if err == nil {
		var n int64
		if n, err = res.RowsAffected(); err == nil && n == 0 {
			err = store.ErrNotFound
		}
	}
	if err != nil {
		return fmt.Errorf("sqlite: delete metric provider %s: %w", name, err)
	}
	return nil
}
