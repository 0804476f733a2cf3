package inspector_test

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/edge-es/eventstore"
	"github.com/edge-es/eventstore/inspector"
	"github.com/edge-es/eventstore/sqlite"
)

// The benchmark's store: 1,000,000 events of 100,000 streams of 10
// events each, in 5 categories, 4 event types. Built once per process,
// in a file under the temp dir (a minute or so).
const (
	benchStreams = 100_000
	benchPer     = 10
)

var bench struct {
	once  sync.Once
	dir   string
	store *eventstore.Store
	b     *sqlite.Backend
	err   error
}

func benchStore(tb testing.TB) (*eventstore.Store, *sqlite.Backend) {
	bench.once.Do(func() {
		bench.dir, bench.err = os.MkdirTemp("", "inspector-bench-")
		if bench.err != nil {
			return
		}
		path := filepath.Join(bench.dir, "events.db")
		bench.b, bench.err = sqlite.Open(path, nil)
		if bench.err != nil {
			return
		}
		bench.store = eventstore.New(bench.b, nil)
		ctx := context.Background()
		types := []string{"Created", "Updated", "Moved", "Closed"}
		cats := []string{"order", "account", "sensor", "device", "user"}
		const perTx = 1000
		for first := 0; first < benchStreams; first += perTx {
			bench.err = bench.store.Transact(ctx, func(ctx context.Context) error {
				for i := first; i < first+perTx; i++ {
					events := make([]eventstore.Event, benchPer)
					for v := range events {
						events[v] = eventstore.Event{Type: types[v%len(types)],
							Data:     fmt.Appendf(nil, `{"stream":%d,"version":%d,"payload":"%0150d"}`, i, v, i),
							Metadata: []byte(`{"user":"bench"}`)}
					}
					if _, err := bench.store.Append(ctx, fmt.Sprintf("%s-%06d", cats[i%len(cats)], i), eventstore.NoStream, events...); err != nil {
						return err
					}
				}
				return nil
			})
			if bench.err != nil {
				return
			}
		}
	})
	if bench.err != nil {
		tb.Fatal(bench.err)
	}
	return bench.store, bench.b
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bench.store != nil {
		bench.store.Close()
	}
	if bench.dir != "" {
		os.RemoveAll(bench.dir)
	}
	os.Exit(code)
}

// BenchmarkPages is the server time of each page on a 1,000,000-event
// store of 100,000 streams (bench/README.md):
//
//	go test -run '^$' -bench Pages -benchtime 200x ./inspector
func BenchmarkPages(b *testing.B) {
	s, sb := benchStore(b)
	h := inspector.Handler(s, &inspector.Options{SQLite: sb})
	var some eventstore.RecordedEvent
	for e, err := range s.ReadAll(context.Background(), eventstore.ReadOptions{From: 654_321, Limit: 1}, eventstore.Filter{}) {
		if err != nil {
			b.Fatal(err)
		}
		some = e
	}
	for _, target := range []string{
		"/streams",
		"/streams?after=order-050000",
		"/streams?prefix=sensor-09",
		"/streams?category=device&after=device-090004",
		"/stream?id=order-065430",
		"/stream?id=order-065430&dir=back",
		"/event?pos=654321",
		"/event?id=" + some.ID.String(),
		"/log",
		"/log?from=500000",
		"/log?from=500000&dir=back",
		"/log?category=account&from=900000",
		"/log?type=Closed",
		"/log?glob=user-0999*",
		"/consumers",
		"/",
	} {
		name := cmp.Or(strings.TrimPrefix(target, "/"), "overview")
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
				if rec.Code != http.StatusOK {
					b.Fatalf("%s: %d", target, rec.Code)
				}
			}
		})
	}
}
