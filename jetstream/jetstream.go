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
// # Message format
//
// Each event becomes one message:
//
//	subject   events.<category>.<stream ID>   (see Options.Subject)
//	headers   Nats-Msg-Id: <event ID>
//	          Eventstore-Type, Eventstore-Stream, Eventstore-Version,
//	          Eventstore-Position, Eventstore-Recorded-At (RFC 3339, UTC),
//	          Eventstore-Metadata (only when the event has metadata)
//	data      the event's data
//
// A NATS header cannot carry every text as it is: the client turns CR and
// LF into spaces and trims spaces at both ends. So when the metadata, the
// type or the stream ID is not valid UTF-8, contains a control character
// (CR, LF, tab, NUL, ...) or begins or ends with a space, it is sent in
// standard base64 under the header's name with [Base64Suffix] instead
// (Eventstore-Metadata-Base64, Eventstore-Type-Base64,
// Eventstore-Stream-Base64), and the plain header is left out. Nothing is
// dropped or altered, and metadata such as compact JSON keeps its plain,
// readable header. [Decode] turns a message back into the event, byte for
// byte.
//
// # Order
//
// The remote stream holds a device's events in position order, each once,
// whatever fails on the way. A batch is published without waiting for each
// acknowledgement, and every message after the batch's first carries
// Nats-Expected-Last-Msg-Id: the ID of the event before it. JetStream
// therefore stores a message only right after its predecessor: when one
// is refused, lost in a reconnection or retried late by the client, every
// later message of the batch is refused too, [Sink.Send] reports the
// events before the failure as accepted, and the forwarder sends the rest
// again in order. A resent event that JetStream already holds is
// acknowledged as a duplicate, so a resend never stores an event twice.
//
// Another writer's message can come between two of a batch (a stream
// shared by several devices, or a Subject that spreads events over several
// streams). Send then publishes the rest of that batch one message at a
// time, each after the previous one's acknowledgement: still in order, but
// one round trip per event. Give each device a stream of its own (sourced
// into a central stream if need be) to keep the fast path.
//
// Deduplication holds within the stream's duplicate window: make it longer
// than the longest outage you expect a device to have. [StreamConfig]
// defaults it to 24 hours.
package jetstream

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/edge-es/eventstore"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
)

// Header names set on every message, besides Nats-Msg-Id; HeaderMetadata
// only when the event has metadata. Type, stream ID and metadata may come
// under the name with [Base64Suffix] instead (see the package
// documentation).
const (
	HeaderType       = "Eventstore-Type"
	HeaderStream     = "Eventstore-Stream"
	HeaderVersion    = "Eventstore-Version"
	HeaderPosition   = "Eventstore-Position"
	HeaderRecordedAt = "Eventstore-Recorded-At"
	HeaderMetadata   = "Eventstore-Metadata"
)

// Base64Suffix ends the name of a header that carries a text value in
// standard base64, because the text would not survive a NATS header as it
// is (see the package documentation).
const Base64Suffix = "-Base64"

// Options configure a [Sink]. The zero value, like nil, gives the defaults.
type Options struct {
	// Subject returns the subject an event is published to. Default:
	// [DefaultSubject].
	Subject func(eventstore.RecordedEvent) string
	// Stream, when set, is the JetStream stream that [New] creates, or
	// updates to this configuration. Default: none; the stream must exist.
	Stream *StreamConfig
	// AckTimeout bounds the wait for JetStream to acknowledge a batch, or
	// a message when Send publishes one at a time. Default: 10s.
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
	// The timeout also frees the client's record of a message whose
	// acknowledgement never comes, such as one lost in a reconnection.
	js, err := natsjs.New(nc, natsjs.WithPublishAsyncTimeout(o.AckTimeout))
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

// Send implements [eventstore.Sink]: it publishes the batch in position
// order and returns how many events from its start JetStream has stored
// (or already held). The remote stream never holds an event of the batch
// before an earlier one, whatever fails: see "Order" in the package
// documentation.
func (s *Sink) Send(ctx context.Context, events []eventstore.RecordedEvent) (int, error) {
	n, err := s.pipeline(ctx, events)
	if !errors.Is(err, errChainBroken) {
		return n, err
	}
	for i := n; i < len(events); i++ {
		if err := s.publish(ctx, events[i]); err != nil {
			return i, err
		}
	}
	return len(events), nil
}

// errChainBroken reports that another message reached the stream between
// two of the batch's, so the later one was refused.
var errChainBroken = errors.New("jetstream: another message came between two of the batch")

// codeWrongLastMsgID is JetStream's error code for a failed
// Nats-Expected-Last-Msg-Id check.
const codeWrongLastMsgID natsjs.ErrorCode = 10070

// pipeline publishes the events without waiting for each acknowledgement.
// Every event after the first expects its predecessor's ID to be the last
// in the stream, so JetStream stores it only right after its predecessor:
// once one fails (refused, lost, retried late), none after it can land
// before it. It stops at the first failure, with errChainBroken when the
// cause was another writer's message rather than the event.
func (s *Sink) pipeline(ctx context.Context, events []eventstore.RecordedEvent) (int, error) {
	futures := make([]natsjs.PubAckFuture, 0, len(events))
	var pubErr error
	for i, e := range events {
		opts := []natsjs.PublishOpt{natsjs.WithMsgID(e.ID.String())}
		if i > 0 {
			opts = append(opts, natsjs.WithExpectLastMsgID(events[i-1].ID.String()))
		}
		f, err := s.js.PublishMsgAsync(s.message(e), opts...)
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
			var apiErr *natsjs.APIError
			if i > 0 && errors.As(err, &apiErr) && apiErr.ErrorCode == codeWrongLastMsgID {
				return i, errChainBroken
			}
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

// publish publishes one event and waits for its acknowledgement. It
// expects nothing of the stream, so call it only when every event before
// e has been acknowledged.
func (s *Sink) publish(ctx context.Context, e eventstore.RecordedEvent) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.AckTimeout)
	defer cancel()
	if _, err := s.js.PublishMsg(ctx, s.message(e), natsjs.WithMsgID(e.ID.String())); err != nil {
		return fmt.Errorf("jetstream: publish event at position %d: %w", e.Position, err)
	}
	return nil
}

func (s *Sink) message(e eventstore.RecordedEvent) *nats.Msg {
	m := nats.NewMsg(s.opts.Subject(e))
	m.Data = e.Data
	setText(m.Header, HeaderType, e.Type)
	setText(m.Header, HeaderStream, e.StreamID)
	m.Header.Set(HeaderVersion, strconv.FormatInt(e.Version, 10))
	m.Header.Set(HeaderPosition, strconv.FormatInt(e.Position, 10))
	m.Header.Set(HeaderRecordedAt, e.RecordedAt.UTC().Format(time.RFC3339Nano))
	if len(e.Metadata) > 0 {
		setText(m.Header, HeaderMetadata, string(e.Metadata))
	}
	return m
}

// setText sets the header name to v when a NATS header carries v
// unchanged, and name+[Base64Suffix] to v in base64 otherwise: the client
// turns CR and LF into spaces and trims white space at both ends, and
// control characters or bytes that are not UTF-8 are not header text.
func setText(h nats.Header, name, v string) {
	if headerSafe(v) {
		h.Set(name, v)
		return
	}
	h.Set(name+Base64Suffix, base64.StdEncoding.EncodeToString([]byte(v)))
}

func headerSafe(v string) bool {
	if !utf8.ValidString(v) || strings.HasPrefix(v, " ") || strings.HasSuffix(v, " ") {
		return false
	}
	for _, r := range v {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// Decode returns the event a [Sink] published as m, reading the format in
// the package documentation. A message without one of the headers, or
// with one that does not parse, is an error matching
// [eventstore.ErrInvalidArgument].
func Decode(m *nats.Msg) (eventstore.RecordedEvent, error) {
	var e eventstore.RecordedEvent
	if m == nil {
		return e, fmt.Errorf("jetstream: decode: %w: nil message", eventstore.ErrInvalidArgument)
	}
	id, err := uuid.Parse(m.Header.Get(natsjs.MsgIDHeader))
	if err != nil {
		return e, fmt.Errorf("jetstream: decode %s: %w: %s: %v", m.Subject, eventstore.ErrInvalidArgument, natsjs.MsgIDHeader, err)
	}
	e.ID = id
	fields := []struct {
		name     string
		required bool
		set      func(string) error
	}{
		{HeaderStream, true, func(v string) error { e.StreamID = v; return nil }},
		{HeaderType, true, func(v string) error { e.Type = v; return nil }},
		{HeaderVersion, true, func(v string) (err error) { e.Version, err = strconv.ParseInt(v, 10, 64); return err }},
		{HeaderPosition, true, func(v string) (err error) { e.Position, err = strconv.ParseInt(v, 10, 64); return err }},
		{HeaderRecordedAt, true, func(v string) (err error) { e.RecordedAt, err = time.Parse(time.RFC3339Nano, v); return err }},
		{HeaderMetadata, false, func(v string) error { e.Metadata = []byte(v); return nil }},
	}
	for _, f := range fields {
		v, ok, err := headerText(m.Header, f.name)
		if err == nil && !ok && f.required {
			err = errors.New("missing")
		}
		if err == nil && ok {
			err = f.set(v)
		}
		if err != nil {
			return e, fmt.Errorf("jetstream: decode %s: %w: header %s: %v", m.Subject, eventstore.ErrInvalidArgument, f.name, err)
		}
	}
	e.Data = m.Data
	return e, nil
}

// headerText returns the text sent under name by setText.
func headerText(h nats.Header, name string) (string, bool, error) {
	if vs := h.Values(name + Base64Suffix); len(vs) > 0 {
		b, err := base64.StdEncoding.DecodeString(vs[0])
		return string(b), true, err
	}
	vs := h.Values(name)
	if len(vs) == 0 {
		return "", false, nil
	}
	return vs[0], true, nil
}
