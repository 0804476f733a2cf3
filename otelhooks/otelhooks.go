// Package otelhooks adapts the [eventstore.Hooks] to OpenTelemetry: a span
// per store operation and metrics for operations and happenings. It is a
// module of its own, so that the core module does not depend on
// OpenTelemetry.
//
//	hooks, err := otelhooks.New(otel.GetTracerProvider(), otel.GetMeterProvider())
//	store := eventstore.New(backend, &eventstore.Options{Hooks: hooks})
//
// Spans are named "eventstore.<op>" (eventstore.append,
// eventstore.read_stream, ...) with the attributes eventstore.stream,
// eventstore.events and eventstore.position, and the error recorded when
// the operation fails. Metrics:
//
//	eventstore.operation.duration  histogram, seconds, by op and outcome
//	eventstore.events              counter, events appended or read, by op
//	eventstore.happenings          counter, by name and category
package otelhooks

import (
	"context"
	"errors"

	"github.com/edge-es/eventstore"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

const scope = "github.com/edge-es/eventstore"

// New returns hooks that report to the given providers.
func New(tp trace.TracerProvider, mp metric.MeterProvider) (eventstore.Hooks, error) {
	tracer := tp.Tracer(scope)
	meter := mp.Meter(scope)
	duration, err := meter.Float64Histogram("eventstore.operation.duration",
		metric.WithUnit("s"), metric.WithDescription("Duration of event store operations"))
	if err != nil {
		return eventstore.Hooks{}, err
	}
	events, err := meter.Int64Counter("eventstore.events",
		metric.WithDescription("Events appended or read"))
	if err != nil {
		return eventstore.Hooks{}, err
	}
	happenings, err := meter.Int64Counter("eventstore.happenings",
		metric.WithDescription("Lifecycle happenings of the store, its subscriptions, consumers and outbox"))
	if err != nil {
		return eventstore.Hooks{}, err
	}
	return eventstore.Hooks{
		Start: func(ctx context.Context, op eventstore.Op) func(eventstore.Outcome) {
			attrs := []attribute.KeyValue{attribute.String("eventstore.category", op.Category)}
			if op.Stream != "" {
				attrs = append(attrs, attribute.String("eventstore.stream", op.Stream))
			}
			_, span := tracer.Start(ctx, "eventstore."+op.Name, trace.WithAttributes(attrs...))
			return func(o eventstore.Outcome) {
				outcome := "ok"
				span.SetAttributes(attribute.Int("eventstore.events", o.Events))
				if o.Position > 0 {
					span.SetAttributes(attribute.Int64("eventstore.position", o.Position))
				}
				switch {
				case op.Name == "read_stream" && errors.Is(o.Err, eventstore.ErrStreamNotFound):
					// A new aggregate's first load: expected, not a failure.
					outcome = "not_found"
				case o.Err != nil:
					outcome = "error"
					span.RecordError(o.Err)
					span.SetStatus(codes.Error, o.Err.Error())
				}
				span.End()
				opAttr := attribute.String("eventstore.op", op.Name)
				duration.Record(ctx, o.Duration.Seconds(), metric.WithAttributes(opAttr, attribute.String("eventstore.outcome", outcome)))
				if o.Events > 0 && o.Err == nil {
					events.Add(ctx, int64(o.Events), metric.WithAttributes(opAttr))
				}
			}
		},
		Event: func(ctx context.Context, h eventstore.Happening) {
			happenings.Add(ctx, 1, metric.WithAttributes(
				attribute.String("eventstore.happening", h.Name),
				attribute.String("eventstore.category", h.Category)))
		},
	}, nil
}
