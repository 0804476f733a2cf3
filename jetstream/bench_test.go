package jetstream_test

import (
	"context"
	"testing"
	"time"

	"github.com/edge-es/eventstore/jetstream"
)

// BenchmarkForward measures a forwarder draining a 10,000-event backlog
// (100 streams) from a SQLite store to an embedded JetStream server.
func BenchmarkForward(b *testing.B) {
	const n = 10_000
	for b.Loop() {
		b.StopTimer()
		srv := runServer(b, 0, b.TempDir())
		nc := connect(b, srv.ClientURL())
		sink, err := jetstream.New(context.Background(), nc, &jetstream.Options{Stream: &jetstream.StreamConfig{Name: "EVENTS"}})
		if err != nil {
			b.Fatal(err)
		}
		d := newDevice(b, sink)
		d.write(b, 100, n)
		b.StartTimer()
		d.run()
		d.waitForwarded(b, n)
		b.StopTimer()
		d.stop()
		b.StartTimer()
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkDrainAfterOutage measures the time from the server coming back
// after an outage, during which the device wrote 10,000 events, until
// JetStream has confirmed them all: reconnect, backoff, then the drain.
func BenchmarkDrainAfterOutage(b *testing.B) {
	const n = 10_000
	var total time.Duration
	for b.Loop() {
		b.StopTimer()
		dir := b.TempDir()
		srv := runServer(b, 0, dir)
		port := srv.Addr().String()
		nc := connect(b, srv.ClientURL())
		sink, err := jetstream.New(context.Background(), nc, &jetstream.Options{Stream: &jetstream.StreamConfig{Name: "EVENTS"}, AckTimeout: time.Second})
		if err != nil {
			b.Fatal(err)
		}
		d := newDevice(b, sink)
		d.run()
		srv.Shutdown()
		srv.WaitForShutdown()
		d.write(b, 100, n)
		for d.fwd.Status().ConsecutiveFailures == 0 {
			time.Sleep(time.Millisecond)
		}
		start := time.Now()
		b.StartTimer()
		runServer(b, portOf(b, port), dir)
		d.waitForwarded(b, n)
		b.StopTimer()
		total += time.Since(start)
		d.stop()
		b.StartTimer()
	}
	b.ReportMetric(total.Seconds()*1000/float64(b.N), "ms/drain")
}
