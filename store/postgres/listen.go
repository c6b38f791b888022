package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// The channels other servers are told on (pg_notify).
const (
	// ChannelEvents carries "tenant pipeline first last" for every
	// statement that inserted events (a trigger sends it).
	ChannelEvents = "sortie_events"
	// ChannelCommands carries "tenant agent id" when a command for an
	// agent is written, taken over or cancelled.
	ChannelCommands = "sortie_commands"
	// ChannelResults carries "owner tenant id" when a report or the
	// result of a command is written.
	ChannelResults = "sortie_results"
	// ChannelStreams carries the replica's name when it recorded the
	// agent streams it holds.
	ChannelStreams = "sortie_streams"
	// ChannelRevocations carries the revocations and role redefinitions of
	// package auth (JSON), which every server applies.
	ChannelRevocations = "sortie_revocations"
	// ChannelRelays carries "tenant agent id" when an HTTP call to relay
	// through an agent is written, and "tenant agent id gone" when its
	// owner deletes it (answered, or given up).
	ChannelRelays = "sortie_relays"
	// ChannelRelayAnswers carries "owner tenant id" when the answer of a
	// relayed call is written.
	ChannelRelayAnswers = "sortie_relay_answers"
)

// Notify sends payload on channel to every server listening.
func (s *Store) Notify(ctx context.Context, channel, payload string) error {
	if _, err := s.db.ExecContext(ctx, `SELECT pg_notify($1, $2)`, channel, payload); err != nil {
		return fmt.Errorf("postgres: notify: %w", err)
	}
	return nil
}

// Notification is one pg_notify a listener received.
type Notification struct {
	Channel, Payload string
}

// Listen holds one connection of its own (outside the pool) listening on
// channels, and calls got, on one goroutine, for each notification until
// ctx ends. When the connection is lost it connects again (backoff 100 ms
// to 5 s) and calls lost once listening again: notifications sent in
// between are gone, and the caller reads again what they would have said.
// Listen returns once listening (or the first connection's error); got and
// lost must not block for long.
func (s *Store) Listen(ctx context.Context, channels []string, got func(Notification), lost func()) error {
	conn, err := s.listenConn(ctx, channels)
	if err != nil {
		return err
	}
	go func() {
		delay := 100 * time.Millisecond
		for {
			for conn != nil {
				n, err := conn.WaitForNotification(ctx)
				if err != nil {
					conn.Close(context.Background())
					conn = nil
					if ctx.Err() != nil {
						return
					}
					s.log.Warn("postgres: listener connection lost; connecting again", "err", err)
					break
				}
				delay = 100 * time.Millisecond
				got(Notification{Channel: n.Channel, Payload: n.Payload})
			}
			t := time.NewTimer(delay)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			delay = min(2*delay, 5*time.Second)
			if conn, err = s.listenConn(ctx, channels); err != nil {
				s.log.Warn("postgres: listener cannot connect", "err", err, "retry_in", delay)
				continue
			}
			lost()
		}
	}()
	return nil
}

func (s *Store) listenConn(ctx context.Context, channels []string) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, s.conn.Copy())
	if err != nil {
		return nil, errors.New("postgres: listen: " + err.Error())
	}
	for _, ch := range channels {
		if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
			conn.Close(context.Background())
			return nil, errors.New("postgres: listen: " + err.Error())
		}
	}
	return conn, nil
}
