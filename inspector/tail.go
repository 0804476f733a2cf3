package inspector

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/edge-es/eventstore"
)

func (h *handler) tail(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, "tail", nil)
}

// tailEvent is one event of the live tail, as JSON. The page's script
// puts its fields into the page as text, never as markup.
type tailEvent struct {
	Position   int64  `json:"position"`
	Stream     string `json:"stream"`
	Version    int64  `json:"version"`
	Type       string `json:"type"`
	RecordedAt string `json:"recorded_at"`
	Preview    string `json:"preview"`
}

// tailEvents streams new events as Server-Sent Events, from a
// subscription: from now, or after the Last-Event-ID a reconnecting
// browser sends. Events that other processes append arrive through the
// backend's change watcher.
func (h *handler) tailEvents(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	from := eventstore.FromNow
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		if p, err := strconv.ParseInt(id, 10, 64); err == nil && p >= 0 {
			from = p + 1
		}
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	sub, err := h.store.Subscribe(ctx, eventstore.SubscribeOptions{From: from})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	defer sub.Close()
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	// A comment first, so that the browser knows the stream is open
	// (and a test that the subscription is in place).
	w.Write([]byte(": subscribed\n\n"))
	flusher.Flush()
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-keepalive.C:
			w.Write([]byte(": keepalive\n\n"))
			flusher.Flush()
		case e, ok := <-sub.Events():
			if !ok {
				if err := sub.Err(); err != nil && ctx.Err() == nil {
					msg, _ := json.Marshal(err.Error())
					w.Write([]byte("event: failed\ndata: " + string(msg) + "\n\n"))
					flusher.Flush()
				}
				return
			}
			b, _ := json.Marshal(tailEvent{Position: e.Position, Stream: e.StreamID, Version: e.Version, Type: e.Type,
				RecordedAt: e.RecordedAt.UTC().Format("2006-01-02 15:04:05.000Z"), Preview: preview(formatPayload(e.Data))})
			w.Write([]byte("id: " + strconv.FormatInt(e.Position, 10) + "\ndata: " + string(b) + "\n\n"))
			flusher.Flush()
		}
	}
}
