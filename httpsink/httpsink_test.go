package httpsink_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/edge-es/eventstore"
	"github.com/edge-es/eventstore/httpsink"
	"github.com/edge-es/eventstore/memory"
	"github.com/matryer/is"
)

// receiver is a central endpoint that deduplicates by event ID, and can be
// told to fail.
type receiver struct {
	mu       sync.Mutex
	ids      map[string]bool
	order    []int64
	requests int
	keys     []string
	failNext int // fail this many more requests with 503
	accept   int // when positive, accept only this many per request
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests++
	r.keys = append(r.keys, req.Header.Get("Idempotency-Key"))
	if req.Header.Get("Authorization") != "Bearer device-7" {
		http.Error(w, "who are you", http.StatusUnauthorized)
		return
	}
	if r.failNext > 0 {
		r.failNext--
		http.Error(w, "maintenance", http.StatusServiceUnavailable)
		return
	}
	batch, err := httpsink.Decode(req.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	n := len(batch.Events)
	if r.accept > 0 {
		n = min(n, r.accept)
	}
	for _, e := range batch.Events[:n] {
		if !r.ids[e.ID] {
			r.ids[e.ID] = true
			r.order = append(r.order, e.Position)
		}
	}
	fmt.Fprintf(w, `{"accepted":%d}`, n)
}

func TestForwardOverHTTP(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	recv := &receiver{ids: map[string]bool{}, failNext: 3, accept: 7}
	srv := httptest.NewServer(recv)
	defer srv.Close()

	store := eventstore.New(memory.New(), nil)
	defer store.Close()
	for i := range 5 {
		_, err := store.Append(ctx, fmt.Sprintf("sensor-%d", i), eventstore.Any,
			eventstore.Event{Type: "Reading", Data: []byte(`{"c":21.5}`)},
			eventstore.Event{Type: "Raw", Data: []byte{0xff, 0x00}, Metadata: []byte(`{"fw":"1.2"}`)})
		is.NoErr(err)
	}
	sink, err := httpsink.New(srv.URL, &httpsink.Options{Header: http.Header{"Authorization": {"Bearer device-7"}}})
	is.NoErr(err)
	f, err := store.NewForwarder(eventstore.ForwarderOptions{Name: "central", Sink: sink, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
	is.NoErr(err)
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for f.Status().Position < 10 {
		if time.Now().After(deadline) {
			t.Fatalf("forwarded up to %d", f.Status().Position)
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	recv.mu.Lock()
	defer recv.mu.Unlock()
	is.Equal(recv.order, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}) // all, in order, once
	is.True(recv.requests >= 5)                                  // 3 failures, then 7 and 3
	is.Equal(recv.keys[0], recv.keys[3])                         // a retried batch keeps its key
}

func TestSend(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	var got httpsink.Batch
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var err error
		got, err = httpsink.Decode(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
		}
	}))
	defer srv.Close()
	sink, err := httpsink.New(srv.URL, nil)
	is.NoErr(err)
	e := eventstore.RecordedEvent{StreamID: "s-1", Version: 2, Position: 9, Type: "T", Data: []byte(`{"a":1}`), Metadata: []byte("not json")}
	n, err := sink.Send(context.Background(), []eventstore.RecordedEvent{e})
	is.NoErr(err)
	is.Equal(n, 1) // an empty 2xx body accepts the batch
	is.Equal(len(got.Events), 1)
	is.Equal(string(got.Events[0].Data), `{"a":1}`)
	is.Equal(string(got.Events[0].MetadataBase64), "not json")
	is.Equal(got.Events[0].Position, int64(9))

	_, err = httpsink.New("ftp://x", nil)
	is.True(errors.Is(err, eventstore.ErrInvalidArgument))
	_, err = httpsink.Decode(http.NoBody)
	is.True(errors.Is(err, httpsink.ErrBadBatch))
}
