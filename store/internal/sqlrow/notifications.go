package sqlrow

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/sortie-cd/sortie/store"
)

const subscriptionColumns = `tenant, id, application, target, events, sink_type, sink, created_by, created_at`

func scanSubscription(sc Scanner) (store.Subscription, error) {
	var (
		s            store.Subscription
		events, sink string
		created      sql.NullInt64
	)
	if err := sc.Scan(&s.Tenant, &s.ID, &s.Application, &s.Target, &events, &s.SinkType, &sink, &s.CreatedBy, &created); err != nil {
		return s, err
	}
	if err := json.Unmarshal([]byte(events), &s.Events); err != nil {
		return s, fmt.Errorf("subscription %s: events: %w", s.ID, err)
	}
	s.Sink = []byte(sink)
	s.CreatedAt = FromNanos(created)
	return s, nil
}

// CreateSubscription implements store.Store.
func (s *Tables) CreateSubscription(ctx context.Context, sub store.Subscription) error {
	if sub.Tenant == "" || sub.ID == "" || sub.SinkType == "" {
		return fmt.Errorf("%s: create subscription: tenant, id and sink type are required", s.Name)
	}
	sub.CreatedAt = OrNow(sub.CreatedAt, s.nowUTC())
	if err := CheckTimes(sub.CreatedAt); err != nil {
		return fmt.Errorf("%s: create subscription %s: %w", s.Name, sub.ID, err)
	}
	events, err := json.Marshal(sub.Events)
	if err != nil {
		return fmt.Errorf("%s: create subscription %s: %w", s.Name, sub.ID, err)
	}
	sink := string(sub.Sink)
	if sink == "" {
		sink = "{}"
	}
	_, err = s.Write.ExecContext(ctx, s.rebind(`INSERT INTO notification_subscriptions (`+subscriptionColumns+`)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`), sub.Tenant, sub.ID, sub.Application, sub.Target, string(events), sub.SinkType, sink, sub.CreatedBy, sub.CreatedAt.UnixNano())
	if s.IsUnique(err) {
		err = store.ErrConflict
	}
	if err != nil {
		return fmt.Errorf("%s: create subscription %s: %w", s.Name, sub.ID, s.tenantErr(err, sub.Tenant))
	}
	return nil
}

// GetSubscription implements store.Store.
func (s *Tables) GetSubscription(ctx context.Context, tenant, id string) (*store.Subscription, error) {
	sub, err := scanSubscription(s.Read.QueryRowContext(ctx, s.rebind(`SELECT `+subscriptionColumns+` FROM notification_subscriptions WHERE tenant = ? AND id = ?`), tenant, id))
	if errors.Is(err, sql.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("%s: get subscription %s: %w", s.Name, id, err)
	}
	return &sub, nil
}

// ListSubscriptions implements store.Store.
func (s *Tables) ListSubscriptions(ctx context.Context, tenant string) ([]store.Subscription, error) {
	out, err := QueryAll(ctx, s, scanSubscription, `SELECT `+subscriptionColumns+` FROM notification_subscriptions WHERE tenant = ? ORDER BY id`, tenant)
	if err != nil {
		return nil, fmt.Errorf("%s: list subscriptions: %w", s.Name, err)
	}
	return out, nil
}

// DeleteSubscription implements store.Store.
func (s *Tables) DeleteSubscription(ctx context.Context, tenant, id string) error {
	err := Affected(s.Write.ExecContext(ctx, s.rebind(`DELETE FROM notification_subscriptions WHERE tenant = ? AND id = ?`), tenant, id))
	if err != nil {
		return fmt.Errorf("%s: delete subscription %s: %w", s.Name, id, err)
	}
	return nil
}

// NotifyBacklog implements store.Store.
func (s *Tables) NotifyBacklog(ctx context.Context, since time.Time, limit int) ([]store.Event, error) {
	if limit <= 0 {
		limit = 500
	}
	out, err := QueryAll(ctx, s, func(sc Scanner) (store.Event, error) {
		var (
			e    store.Event
			at   sql.NullInt64
			data sql.NullString
		)
		err := sc.Scan(&e.Tenant, &e.Pipeline, &e.Seq, &at, &e.Type, &data)
		e.At = FromNanos(at)
		if data.Valid {
			e.Data = []byte(data.String)
		}
		return e, err
	}, `SELECT e.tenant, e.pipeline, e.seq, e.at, e.type, e.data
FROM pipelines p
JOIN events e ON e.tenant = p.tenant AND e.pipeline = p.id
LEFT JOIN notify_cursors c ON c.tenant = p.tenant AND c.pipeline = p.id
WHERE p.updated_at >= ? AND e.seq > COALESCE(c.seq, 0)
ORDER BY e.tenant, e.pipeline, e.seq
LIMIT ?`, BoundNanos(since), limit)
	if err != nil {
		return nil, fmt.Errorf("%s: notify backlog: %w", s.Name, err)
	}
	return out, nil
}

// Enqueue implements store.Store.
func (s *Tables) Enqueue(ctx context.Context, tenant, pipelineID string, seq int64, msgs []store.OutboxMessage) error {
	now := s.nowUTC()
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for _, m := range msgs {
			if m.Key == "" || m.Subscription == "" || m.Kind == "" {
				return errors.New("a message needs a key, a subscription and a kind")
			}
			created := OrNow(m.CreatedAt, now)
			next := OrNow(m.NextAttempt, created)
			if err := CheckTimes(created, next); err != nil {
				return err
			}
			payload := string(m.Payload)
			if payload == "" {
				payload = "{}"
			}
			_, err := tx.ExecContext(ctx, s.rebind(`INSERT INTO notification_outbox
(tenant, key, subscription, pipeline, kind, payload, status, attempts, next_attempt, last_error, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, '', ?, ?)
ON CONFLICT (tenant, key) DO NOTHING`), tenant, m.Key, m.Subscription, m.Pipeline, m.Kind, payload, store.OutboxPending,
				next.UnixNano(), created.UnixNano(), created.UnixNano())
			if err != nil {
				return s.tenantErr(err, tenant)
			}
		}
		if pipelineID == "" {
			return nil
		}
		_, err := tx.ExecContext(ctx, s.rebind(`INSERT INTO notify_cursors (tenant, pipeline, seq) VALUES (?, ?, ?)
ON CONFLICT (tenant, pipeline) DO UPDATE SET seq = excluded.seq WHERE excluded.seq > notify_cursors.seq`), tenant, pipelineID, seq)
		if s.IsForeignKey(err) {
			err = fmt.Errorf("pipeline %s: %w", pipelineID, store.ErrNotFound)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("%s: enqueue notifications: %w", s.Name, err)
	}
	return nil
}

const outboxColumns = `tenant, id, key, subscription, pipeline, kind, payload, status, attempts, next_attempt, last_error, created_at, updated_at`

func scanOutbox(sc Scanner) (store.OutboxMessage, error) {
	var (
		m                      store.OutboxMessage
		payload                string
		next, created, updated sql.NullInt64
	)
	err := sc.Scan(&m.Tenant, &m.ID, &m.Key, &m.Subscription, &m.Pipeline, &m.Kind, &payload, &m.Status, &m.Attempts, &next, &m.LastError, &created, &updated)
	m.Payload = []byte(payload)
	m.NextAttempt, m.CreatedAt, m.UpdatedAt = FromNanos(next), FromNanos(created), FromNanos(updated)
	return m, err
}

// ClaimOutbox implements store.Store: one transaction reads the due
// messages (on PostgreSQL FOR UPDATE SKIP LOCKED, so two notifiers take
// different rows; SQLite has one writer) and puts each off to until, the
// claim, with a WHERE that re-checks it is still due.
func (s *Tables) ClaimOutbox(ctx context.Context, now, until time.Time, limit int) ([]store.OutboxMessage, error) {
	if limit <= 0 {
		limit = 100
	}
	if err := CheckTimes(until); err != nil {
		return nil, fmt.Errorf("%s: claim outbox: %w", s.Name, err)
	}
	var out []store.OutboxMessage
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		out = nil
		due, err := QueryAll(ctx, tx, scanOutbox, s.rebind(`SELECT `+outboxColumns+` FROM notification_outbox
WHERE status = ? AND next_attempt <= ? ORDER BY next_attempt, id LIMIT ?`+s.SkipLocked), store.OutboxPending, BoundNanos(now), limit)
		if err != nil {
			return err
		}
		for _, m := range due {
			res, err := tx.ExecContext(ctx, s.rebind(`UPDATE notification_outbox SET next_attempt = ?
WHERE tenant = ? AND id = ? AND status = ? AND next_attempt <= ?`), until.UnixNano(), m.Tenant, m.ID, store.OutboxPending, BoundNanos(now))
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil || n == 0 {
				continue // claimed by another meanwhile
			}
			m.Claim = until
			out = append(out, m)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: claim outbox: %w", s.Name, err)
	}
	return out, nil
}

// NextOutboxDue implements store.Store.
func (s *Tables) NextOutboxDue(ctx context.Context) (time.Time, error) {
	var next sql.NullInt64
	err := s.Read.QueryRowContext(ctx, s.rebind(`SELECT MIN(next_attempt) FROM notification_outbox WHERE status = ?`), store.OutboxPending).Scan(&next)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: next outbox due: %w", s.Name, err)
	}
	return FromNanos(next), nil
}

// RecordDelivery implements store.Store.
func (s *Tables) RecordDelivery(ctx context.Context, m store.OutboxMessage) error {
	m.UpdatedAt = OrNow(m.UpdatedAt, s.nowUTC())
	if err := CheckTimes(m.UpdatedAt, m.NextAttempt); err != nil {
		return fmt.Errorf("%s: record delivery %d: %w", s.Name, m.ID, err)
	}
	q, args := `UPDATE notification_outbox
SET status = ?, attempts = ?, next_attempt = ?, last_error = ?, updated_at = ? WHERE tenant = ? AND id = ?`,
		[]any{m.Status, m.Attempts, BoundNanos(m.NextAttempt), m.LastError, m.UpdatedAt.UnixNano(), m.Tenant, m.ID}
	if !m.Claim.IsZero() {
		q, args = q+` AND status = ? AND next_attempt = ?`, append(args, store.OutboxPending, BoundNanos(m.Claim))
	}
	err := Affected(s.Write.ExecContext(ctx, s.rebind(q), args...))
	if errors.Is(err, store.ErrNotFound) && !m.Claim.IsZero() {
		var n int
		if s.Read.QueryRowContext(ctx, s.rebind(`SELECT count(*) FROM notification_outbox WHERE tenant = ? AND id = ?`), m.Tenant, m.ID).Scan(&n) == nil && n > 0 {
			err = fmt.Errorf("the claim expired and was taken over: %w", store.ErrConflict)
		}
	}
	if err != nil {
		return fmt.Errorf("%s: record delivery %d: %w", s.Name, m.ID, err)
	}
	return nil
}

// ListDeliveries implements store.Store.
func (s *Tables) ListDeliveries(ctx context.Context, tenant, subscription string, limit int) ([]store.OutboxMessage, error) {
	if limit <= 0 {
		limit = 100
	}
	q, args := `SELECT `+outboxColumns+` FROM notification_outbox WHERE tenant = ?`, []any{tenant}
	if subscription != "" {
		q, args = q+` AND subscription = ?`, append(args, subscription)
	}
	out, err := QueryAll(ctx, s, scanOutbox, q+` ORDER BY id DESC LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("%s: list deliveries: %w", s.Name, err)
	}
	for i := range out {
		out[i].Payload = nil
	}
	return out, nil
}

// UseActionLink implements store.Store: one INSERT on the nonce's key, so
// of racing uses exactly one succeeds.
func (s *Tables) UseActionLink(ctx context.Context, tenant, nonce string, at time.Time) error {
	at = OrNow(at, s.nowUTC())
	_, err := s.Write.ExecContext(ctx, s.rebind(`INSERT INTO action_link_uses (tenant, nonce, used_at) VALUES (?, ?, ?)`), tenant, nonce, at.UnixNano())
	if s.IsUnique(err) {
		err = store.ErrConflict
	}
	if err != nil {
		return fmt.Errorf("%s: use action link: %w", s.Name, s.tenantErr(err, tenant))
	}
	return nil
}

// ActionLinkUsed implements store.Store.
func (s *Tables) ActionLinkUsed(ctx context.Context, tenant, nonce string) (bool, error) {
	var n int
	err := s.Read.QueryRowContext(ctx, s.rebind(`SELECT count(*) FROM action_link_uses WHERE tenant = ? AND nonce = ?`), tenant, nonce).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("%s: action link used: %w", s.Name, err)
	}
	return n > 0, nil
}
