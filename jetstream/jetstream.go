// Package jetstream is an [eventstore.Sink] that publishes events to NATS
// JetStream, the clustered, replicated broker that central services
// consume: a device's [eventstore.Forwarder] ships its events here in
// order, and JetStream's deduplication by Nats-Msg-Id (the event ID) makes
// a resend after a failure or a restart harmless, so the remote stream
// holds each event once.
//
// It is a module of its own, so that the core module does not depend on
// NATS.
//
// Each event becomes one message:
//
//	subject   events.<category>.<stream ID>   (see Options.Subject)
//	headers   Nats-Msg-Id: <event ID>
//	          Eventstore-Type, Eventstore-Stream, Eventstore-Version,
//	          Eventstore-Position, Eventstore-Recorded-At (RFC 3339, UTC),
//	          Eventstore-Metadata (when the metadata fits in a header)
//	data      the event's data
//
// Deduplication holds within the stream's duplicate window: make it longer
// than the longest outage you expect a device to have. [StreamConfig]
// defaults it to 24 hours.
package jetstream

import (
	"context"
	"crypto/tls"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/edge-es/eventstore"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
)

// Header names set on every message, besides Nats-Msg-Id.
const (
	HeaderType       = "Eventstore-Type"
	HeaderStream     = "Eventstore-Stream"
	HeaderVersion    = "Eventstore-Version"
	HeaderPosition   = "Eventstore-Position"
	HeaderRecordedAt = "Eventstore-Recorded-At"
	HeaderMetadata   = "Eventstore-Metadata"
)

// Options configure a [Sink]. The zero value, like nil, gives the defaults.
type Options struct {
	// Subject returns the subject an event is published to. Default:
	// [DefaultSubject].
	Subject func(eventstore.RecordedEvent) string
	// Stream, when set, is the JetStream stream that [New] creates, or
	// updates to this configuration. Default: none; the stream must exist.
	Stream *StreamConfig
	// AckTimeout bounds the wait for JetStream to acknowledge a batch.
	// Default: 10s.
	AckTimeout time.Duration
}

// StreamConfig is the stream [New] creates when asked.
type StreamConfig struct {
	// Name of the stream. Required.
	Name string
	// Subjects it captures. Default: "events.>".
	Subjects []string
	// Duplicates is the deduplication window. Default: 24 hours.
	Duplicates time.Duration
	// Replicas is the number of copies in a cluster. Default: 1.
	Replicas int
}

// DefaultSubject is "events.<category>.<stream ID>", each part made a
// valid subject token with [Token].
func DefaultSubject(e eventstore.RecordedEvent) string {
	return "events." + Token(eventstore.Category(e.StreamID)) + "." + Token(e.StreamID)
}

// Token makes s usable as one NATS subject token: '.', '*', '>' and white
// space become '_', and an empty string becomes "_".
func Token(s string) string {
	if s == "" {
		return "_"
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r == '.' || r == '*' || r == '>' || r == ' ' || r == '\t' || r == '\r' || r == '\n':
			return '_'
		}
		return r
	}, s)
}

// Sink publishes to JetStream. Create it with [New] or [Connect].
type Sink struct {
	js   natsjs.JetStream
	opts Options
	own  *nats.Conn // closed by Close when Connect made it
}

var _ eventstore.Sink = (*Sink)(nil)

// New returns a sink on an open NATS connection, creating or updating
// opts.Stream when set.
func New(ctx context.Context, nc *nats.Conn, opts *Options) (*Sink, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Subject == nil {
		o.Subject = DefaultSubject
	}
	if o.AckTimeout <= 0 {
		o.AckTimeout = 10 * time.Second
	}
	js, err := natsjs.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	if sc := o.Stream; sc != nil {
		if sc.Name == "" {
			return nil, fmt.Errorf("jetstream: %w: stream without a name", eventstore.ErrInvalidArgument)
		}
		cfg := natsjs.StreamConfig{Name: sc.Name, Subjects: sc.Subjects, Duplicates: sc.Duplicates, Replicas: sc.Replicas}
		if len(cfg.Subjects) == 0 {
			cfg.Subjects = []string{"events.>"}
		}
		if cfg.Duplicates == 0 {
			cfg.Duplicates = 24 * time.Hour
		}
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return nil, fmt.Errorf("jetstream: create stream %s: %w", sc.Name, err)
		}
	}
	return &Sink{js: js, opts: o}, nil
}

// ConnectOptions say how [Connect] reaches the NATS server.
type ConnectOptions struct {
	// Name identifies this client (the device) to the server.
	Name string
	// TLS, when set, is the TLS configuration (server CA, client
	// certificate).
	TLS *tls.Config
	// CredsFile is a NATS credentials file (JWT and NKey seed).
	CredsFile string
	// Token, or User and Password, authenticate without a creds file.
	Token, User, Password string
}

// Connect opens a NATS connection to url and returns a sink on it; Close
// closes the connection. The connection reconnects forever, so that a
// device rides out any outage.
func Connect(ctx context.Context, url string, conn ConnectOptions, opts *Options) (*Sink, error) {
	nopts := []nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(time.Second)}
	if conn.Name != "" {
		nopts = append(nopts, nats.Name(conn.Name))
	}
	if conn.TLS != nil {
		nopts = append(nopts, nats.Secure(conn.TLS))
	}
	if conn.CredsFile != "" {
		nopts = append(nopts, nats.UserCredentials(conn.CredsFile))
	}
	if conn.Token != "" {
		nopts = append(nopts, nats.Token(conn.Token))
	}
	if conn.User != "" {
		nopts = append(nopts, nats.UserInfo(conn.User, conn.Password))
	}
	nc, err := nats.Connect(url, nopts...)
	if err != nil {
		return nil, fmt.Errorf("jetstream: connect %s: %w", url, err)
	}
	s, err := New(ctx, nc, opts)
	if err != nil {
		nc.Close()
		return nil, err
	}
	s.own = nc
	return s, nil
}

// Close closes the connection if [Connect] opened it.
func (s *Sink) Close() error {
	if s.own != nil {
		s.own.Close()
	}
	return nil
}

// Send implements [eventstore.Sink]: it publishes the batch asynchronously
// and waits for the acknowledgements, in order. The events before the
// first failure are accepted.
func (s *Sink) Send(ctx context.Context, events []eventstore.RecordedEvent) (int, error) {
	futures := make([]natsjs.PubAckFuture, 0, len(events))
	var pubErr error
	for _, e := range events {
		f, err := s.js.PublishMsgAsync(s.message(e), natsjs.WithMsgID(e.ID.String()))
		if err != nil {
			pubErr = err
			break
		}
		futures = append(futures, f)
	}
	timeout := time.NewTimer(s.opts.AckTimeout)
	defer timeout.Stop()
	for i, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return i, fmt.Errorf("jetstream: publish event at position %d: %w", events[i].Position, err)
		case <-timeout.C:
			return i, fmt.Errorf("jetstream: no acknowledgement for position %d within %v", events[i].Position, s.opts.AckTimeout)
		case <-ctx.Done():
			return i, ctx.Err()
		}
	}
	if pubErr != nil {
		return len(futures), fmt.Errorf("jetstream: publish event at position %d: %w", events[len(futures)].Position, pubErr)
	}
	return len(events), nil
}

func (s *Sink) message(e eventstore.RecordedEvent) *nats.Msg {
	m := nats.NewMsg(s.opts.Subject(e))
	m.Data = e.Data
	m.Header.Set(HeaderType, e.Type)
	m.Header.Set(HeaderStream, e.StreamID)
	m.Header.Set(HeaderVersion, strconv.FormatInt(e.Version, 10))
	m.Header.Set(HeaderPosition, strconv.FormatInt(e.Position, 10))
	m.Header.Set(HeaderRecordedAt, e.RecordedAt.UTC().Format(time.RFC3339Nano))
	if md := string(e.Metadata); md != "" && !strings.ContainsAny(md, "\r\n") {
		m.Header.Set(HeaderMetadata, md)
	}
	return m
}
