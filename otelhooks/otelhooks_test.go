package otelhooks_test

import (
	"context"
	"testing"

	"github.com/edge-es/eventstore"
	"github.com/edge-es/eventstore/memory"
	"github.com/edge-es/eventstore/otelhooks"
	"github.com/matryer/is"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

func TestHooks(t *testing.T) {
	is := is.New(t)
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	hooks, err := otelhooks.New(tp, mp)
	is.NoErr(err)

	ctx := context.Background()
	store := eventstore.New(memory.New(), &eventstore.Options{Hooks: hooks})
	_, err = store.Append(ctx, "order-1", eventstore.NoStream, eventstore.Event{Type: "Placed"}, eventstore.Event{Type: "Paid"})
	is.NoErr(err)
	_, err = store.Append(ctx, "order-1", eventstore.NoStream, eventstore.Event{Type: "Again"})
	is.True(err != nil)
	for range store.ReadStream(ctx, "order-1", eventstore.ReadOptions{}) {
	}
	is.NoErr(store.Close())

	ended := spans.Ended()
	is.Equal(len(ended), 3)
	is.Equal(ended[0].Name(), "eventstore.append")
	is.True(hasAttr(ended[0].Attributes(), attribute.String("eventstore.stream", "order-1")))
	is.True(hasAttr(ended[0].Attributes(), attribute.Int("eventstore.events", 2)))
	is.Equal(ended[1].Status().Code, codes.Error) // the conflict
	is.Equal(ended[2].Name(), "eventstore.read_stream")

	var rm metricdata.ResourceMetrics
	is.NoErr(reader.Collect(ctx, &rm))
	sums := map[string]int64{}
	histograms := map[string]uint64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					sums[m.Name] += p.Value
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					histograms[m.Name] += p.Count
				}
			}
		}
	}
	is.Equal(histograms["eventstore.operation.duration"], uint64(3))
	is.Equal(sums["eventstore.events"], int64(4))     // 2 appended, 2 read
	is.Equal(sums["eventstore.happenings"], int64(2)) // opened, closed
}

func TestHooks_StreamNotFoundIsNotAnError(t *testing.T) {
	is := is.New(t)
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	hooks, err := otelhooks.New(tp, sdkmetric.NewMeterProvider())
	is.NoErr(err)
	store := eventstore.New(memory.New(), &eventstore.Options{Hooks: hooks})
	defer store.Close()
	for range store.ReadStream(context.Background(), "account-new", eventstore.ReadOptions{}) {
	}
	ended := spans.Ended()
	is.Equal(len(ended), 1)
	is.Equal(ended[0].Name(), "eventstore.read_stream")
	is.True(ended[0].Status().Code != codes.Error) // a new aggregate's first load is expected
	is.Equal(len(ended[0].Events()), 0)            // and records no error event
}

func hasAttr(attrs []attribute.KeyValue, want attribute.KeyValue) bool {
	for _, a := range attrs {
		if a == want {
			return true
		}
	}
	return false
}
