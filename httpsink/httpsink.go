// Package httpsink is an [eventstore.Sink] that POSTs batches of events as
// JSON to an HTTP endpoint, for central systems without NATS.
//
// Each request carries one batch:
//
//	POST <url>
//	Content-Type: application/json
//	Idempotency-Key: <hex SHA-256 of the batch's event IDs>
//
//	{"events": [{"id": "...", "stream": "order-1", "version": 0, "position": 1,
//	  "type": "Placed", "data": {...}, "metadata": {...}, "recorded_at": "..."}]}
//
// Data and metadata that are valid JSON are embedded as they are; other
// bytes go in "data_base64" / "metadata_base64". A retried batch has the
// same Idempotency-Key, and every event its ID, so the receiver can drop
// what it already has.
//
// A 2xx response accepts the whole batch, unless its body is a JSON object
// with "accepted": n for fewer; any other status is a failure that the
// forwarder retries with backoff.
package httpsink

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/edge-es/eventstore"
	"github.com/google/uuid"
)

// Options configure a [Sink]. The zero value, like nil, gives the defaults.
type Options struct {
	// Client sends the requests. Default: an http.Client with a 30s
	// timeout.
	Client *http.Client
	// Header is added to every request, e.g. Authorization.
	Header http.Header
}

// Sink posts batches to one URL. Create it with [New].
type Sink struct {
	url    string
	client *http.Client
	header http.Header
}

var _ eventstore.Sink = (*Sink)(nil)

// New returns a sink that posts to endpoint, an http or https URL.
func New(endpoint string, opts *Options) (*Sink, error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("httpsink: %w: endpoint %q is not an http(s) URL", eventstore.ErrInvalidArgument, endpoint)
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 30 * time.Second}
	}
	return &Sink{url: endpoint, client: o.Client, header: o.Header.Clone()}, nil
}

// Event is the JSON form of one event in a batch.
type Event struct {
	ID             string          `json:"id"`
	Stream         string          `json:"stream"`
	Version        int64           `json:"version"`
	Position       int64           `json:"position"`
	Type           string          `json:"type"`
	Data           json.RawMessage `json:"data,omitempty"`
	DataBase64     []byte          `json:"data_base64,omitempty"`
	Metadata       json.RawMessage `json:"metadata,omitempty"`
	MetadataBase64 []byte          `json:"metadata_base64,omitempty"`
	RecordedAt     time.Time       `json:"recorded_at"`
}

// FromRecorded returns the JSON form of a recorded event. The eventstore
// command's export uses the same field names, one event a line, but keeps
// JSON data byte for byte where this form may re-encode it.
func FromRecorded(e eventstore.RecordedEvent) Event {
	out := Event{ID: e.ID.String(), Stream: e.StreamID, Version: e.Version, Position: e.Position, Type: e.Type, RecordedAt: e.RecordedAt}
	if json.Valid(e.Data) {
		out.Data = e.Data
	} else if len(e.Data) > 0 {
		out.DataBase64 = e.Data
	}
	if json.Valid(e.Metadata) {
		out.Metadata = e.Metadata
	} else if len(e.Metadata) > 0 {
		out.MetadataBase64 = e.Metadata
	}
	return out
}

// Event returns the event to append again: its ID, type, data and
// metadata.
func (e Event) Event() (eventstore.Event, error) {
	id, err := uuid.Parse(e.ID)
	if err != nil {
		return eventstore.Event{}, fmt.Errorf("%w: event ID %q: %v", eventstore.ErrInvalidArgument, e.ID, err)
	}
	out := eventstore.Event{ID: id, Type: e.Type, Data: []byte(e.Data), Metadata: []byte(e.Metadata)}
	if len(e.DataBase64) > 0 {
		out.Data = e.DataBase64
	}
	if len(e.MetadataBase64) > 0 {
		out.Metadata = e.MetadataBase64
	}
	return out, nil
}

// Batch is the JSON body of a request.
type Batch struct {
	Events []Event `json:"events"`
}

// Send implements [eventstore.Sink].
func (s *Sink) Send(ctx context.Context, events []eventstore.RecordedEvent) (int, error) {
	batch := Batch{Events: make([]Event, len(events))}
	key := sha256.New()
	for i, e := range events {
		batch.Events[i] = FromRecorded(e)
		key.Write(e.ID[:])
	}
	body, err := json.Marshal(batch)
	if err != nil {
		return 0, fmt.Errorf("httpsink: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("httpsink: %w", err)
	}
	for k, v := range s.header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", hex.EncodeToString(key.Sum(nil)))
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("httpsink: %w", err)
	}
	defer resp.Body.Close()
	reply, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return 0, fmt.Errorf("httpsink: %s: %s", resp.Status, bytes.TrimSpace(reply[:min(len(reply), 512)]))
	}
	var ack struct {
		Accepted *int `json:"accepted"`
	}
	if json.Unmarshal(reply, &ack) == nil && ack.Accepted != nil && *ack.Accepted < len(events) {
		n := max(*ack.Accepted, 0)
		return n, fmt.Errorf("httpsink: the endpoint accepted %d of %d events", n, len(events))
	}
	return len(events), nil
}

// ErrBadBatch is returned by [Decode] for a body that is not a batch.
var ErrBadBatch = errors.New("httpsink: not a batch of events")

// Decode reads a request body written by [Sink.Send]: for receivers
// written in Go.
func Decode(r io.Reader) (Batch, error) {
	var b Batch
	if err := json.NewDecoder(r).Decode(&b); err != nil {
		return Batch{}, fmt.Errorf("%w: %v", ErrBadBatch, err)
	}
	return b, nil
}
