package jetstream_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edge-es/eventstore"
	"github.com/edge-es/eventstore/jetstream"
	"github.com/google/uuid"
	"github.com/matryer/is"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
)

// recorded returns n events at positions 1..n, as a forwarder would send
// them, with data of size bytes each.
func recorded(n, size int) []eventstore.RecordedEvent {
	at := time.Date(2026, 11, 26, 12, 0, 0, 123456789, time.UTC)
	events := make([]eventstore.RecordedEvent, n)
	for i := range events {
		events[i] = eventstore.RecordedEvent{
			ID: uuid.Must(uuid.NewV7()), StreamID: "sensor-1", Version: int64(i), Position: int64(i + 1),
			Type: "Reading", Data: bytes.Repeat([]byte{'x'}, size), Metadata: []byte(`{"fw":"1.4"}`), RecordedAt: at,
		}
	}
	return events
}

// createStream creates the stream EVENTS on subjects events.> with cfg's
// other fields, and returns a JetStream context on nc.
func createStream(t testing.TB, nc *nats.Conn, cfg natsjs.StreamConfig) natsjs.JetStream {
	t.Helper()
	js, err := natsjs.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Name, cfg.Subjects = "EVENTS", []string{"events.>"}
	if _, err := js.CreateStream(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	return js
}

// stored decodes the whole stream EVENTS, in stream order.
func stored(t testing.TB, js natsjs.JetStream) []*nats.RawStreamMsg {
	t.Helper()
	ctx := context.Background()
	st, err := js.Stream(ctx, "EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*nats.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, &nats.RawStreamMsg{Subject: m.Subject, Header: m.Header, Data: m.Data, Sequence: m.Sequence})
	}
	return out
}

// positions returns the positions of the messages that carry one, in
// stream order.
func positions(t testing.TB, msgs []*nats.RawStreamMsg) []int64 {
	t.Helper()
	var out []int64
	for _, m := range msgs {
		if m.Header.Get(jetstream.HeaderPosition) == "" {
			continue // another writer's
		}
		e, err := jetstream.Decode(&nats.Msg{Subject: m.Subject, Header: m.Header, Data: m.Data})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e.Position)
	}
	return out
}

func upTo(n int) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = int64(i + 1)
	}
	return out
}

// TestSend_RejectedMiddleMessageKeepsOrder has JetStream reject the fifth
// of ten messages (too large for the stream): the four before it are
// accepted, and none after it may reach the stream before it does.
func TestSend_RejectedMiddleMessageKeepsOrder(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	ctx := context.Background()
	srv := runServer(t, 0, t.TempDir())
	nc := connect(t, srv.ClientURL())
	js := createStream(t, nc, natsjs.StreamConfig{MaxMsgSize: 1024})
	sink, err := jetstream.New(ctx, nc, nil)
	is.NoErr(err)

	events := recorded(10, 10)
	events[4].Data = bytes.Repeat([]byte{'x'}, 2048)
	n, err := sink.Send(ctx, events)
	is.True(err != nil)
	is.Equal(n, 4)
	is.Equal(positions(t, stored(t, js)), upTo(4)) // nothing after the rejected one

	_, err = js.UpdateStream(ctx, natsjs.StreamConfig{Name: "EVENTS", Subjects: []string{"events.>"}, MaxMsgSize: 4096})
	is.NoErr(err)
	n, err = sink.Send(ctx, events[n:])
	is.NoErr(err)
	is.Equal(n, 6)
	is.Equal(positions(t, stored(t, js)), upTo(10))
}

// lose sends chosen positions nowhere the first time they are published
// (a subject no stream captures), as if the message were lost once.
func lose(lost ...int64) func(eventstore.RecordedEvent) string {
	seen := make(map[int64]*atomic.Bool)
	for _, p := range lost {
		seen[p] = new(atomic.Bool)
	}
	return func(e eventstore.RecordedEvent) string {
		if b, ok := seen[e.Position]; ok && !b.Swap(true) {
			return "nowhere." + jetstream.Token(e.StreamID)
		}
		return jetstream.DefaultSubject(e)
	}
}

// TestForward_MessageLostOnceKeepsOrder runs a forwarder whose sink loses
// two messages in the middle of a batch once: after the resends, the
// remote stream holds every event once, in position order.
func TestForward_MessageLostOnceKeepsOrder(t *testing.T) {
	t.Parallel()
	srv := runServer(t, 0, t.TempDir())
	nc := connect(t, srv.ClientURL())
	sink, err := jetstream.New(context.Background(), nc, &jetstream.Options{
		Stream: &jetstream.StreamConfig{Name: "EVENTS"}, Subject: lose(7, 120)})
	if err != nil {
		t.Fatal(err)
	}
	d := newDevice(t, sink)
	d.write(t, 10, 300)
	d.run()
	defer d.stop()
	d.waitForwarded(t, 300)
	inOrder(t, received(t, nc, "EVENTS"), 300)
}

// TestSend_AnotherWriterInBetween shares the stream with another writer
// whose message lands in the middle of a batch: the batch is still
// accepted whole, in order, each event once.
func TestSend_AnotherWriterInBetween(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	ctx := context.Background()
	srv := runServer(t, 0, t.TempDir())
	nc := connect(t, srv.ClientURL())
	js := createStream(t, nc, natsjs.StreamConfig{})
	other, err := natsjs.New(connect(t, srv.ClientURL()))
	is.NoErr(err)
	var wrote atomic.Bool
	subject := func(e eventstore.RecordedEvent) string {
		if e.Position == 50 && !wrote.Swap(true) {
			// Position 49 is on its way: make sure the server has it, then
			// write in between from another connection.
			if err := nc.Flush(); err != nil {
				t.Error(err)
			}
			if _, err := other.Publish(ctx, "events.other.1", []byte("other")); err != nil {
				t.Error(err)
			}
		}
		return jetstream.DefaultSubject(e)
	}
	sink, err := jetstream.New(ctx, nc, &jetstream.Options{Subject: subject})
	is.NoErr(err)

	n, err := sink.Send(ctx, recorded(100, 10))
	is.NoErr(err)
	is.Equal(n, 100)
	msgs := stored(t, js)
	is.Equal(len(msgs), 101)
	is.Equal(positions(t, msgs), upTo(100))
}

// TestSend_MetadataRoundTrip sends metadata, types and stream IDs that a
// NATS header cannot carry as they are: each arrives byte for byte.
func TestSend_MetadataRoundTrip(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	ctx := context.Background()
	srv := runServer(t, 0, t.TempDir())
	nc := connect(t, srv.ClientURL())
	js := createStream(t, nc, natsjs.StreamConfig{})
	sink, err := jetstream.New(ctx, nc, nil)
	is.NoErr(err)

	metadata := []string{
		`{"fw":"1.4"}`,
		"",
		"{\n  \"pretty\": true\n}\n",
		"a\r\nb",
		"\r",
		" leading and trailing ",
		"\ttab",
		"nul\x00byte",
		"\xff\xfenot UTF-8",
		"unicode é \u2028 ✓",
		strings.Repeat("long ", 2000),
	}
	events := recorded(len(metadata)+2, 3)
	for i, md := range metadata {
		events[i].Metadata = []byte(md)
	}
	events[len(metadata)].Type = " Spaced type "
	events[len(metadata)+1].StreamID = " sensor-2 "
	events[len(metadata)+1].Data = nil
	n, err := sink.Send(ctx, events)
	is.NoErr(err)
	is.Equal(n, len(events))

	msgs := stored(t, js)
	is.Equal(len(msgs), len(events))
	for i, m := range msgs {
		got, err := jetstream.Decode(&nats.Msg{Subject: m.Subject, Header: m.Header, Data: m.Data})
		is.NoErr(err)
		want := events[i]
		is.Equal(got.ID, want.ID)
		is.Equal(got.StreamID, want.StreamID)
		is.Equal(got.Type, want.Type)
		is.Equal(got.Version, want.Version)
		is.Equal(got.Position, want.Position)
		is.True(got.RecordedAt.Equal(want.RecordedAt))
		is.True(bytes.Equal(got.Data, want.Data))
		if !bytes.Equal(got.Metadata, want.Metadata) {
			t.Errorf("event %d: metadata %.40q arrived as %.40q", i, want.Metadata, got.Metadata)
		}
	}
	// Metadata a header carries as it is keeps the plain header, so that
	// consumers that read it stay unchanged.
	is.Equal(msgs[0].Header.Get(jetstream.HeaderMetadata), `{"fw":"1.4"}`)
	is.Equal(msgs[0].Header.Get(jetstream.HeaderMetadata+jetstream.Base64Suffix), "")
	is.Equal(msgs[3].Header.Get(jetstream.HeaderMetadata), "")
	is.True(msgs[3].Header.Get(jetstream.HeaderMetadata+jetstream.Base64Suffix) != "")
}

// TestDecode_Malformed checks that a message not published by a Sink is
// refused with ErrInvalidArgument.
func TestDecode_Malformed(t *testing.T) {
	t.Parallel()
	good := nats.Header{}
	good.Set(natsjs.MsgIDHeader, uuid.NewString())
	good.Set(jetstream.HeaderStream, "s")
	good.Set(jetstream.HeaderType, "T")
	good.Set(jetstream.HeaderVersion, "0")
	good.Set(jetstream.HeaderPosition, "1")
	good.Set(jetstream.HeaderRecordedAt, "2026-11-26T12:00:00Z")
	if _, err := jetstream.Decode(&nats.Msg{Header: good}); err != nil {
		t.Fatal(err)
	}
	for _, m := range []*nats.Msg{nil, {}} {
		if _, err := jetstream.Decode(m); !errors.Is(err, eventstore.ErrInvalidArgument) {
			t.Errorf("%v: %v", m, err)
		}
	}
	for _, name := range []string{natsjs.MsgIDHeader, jetstream.HeaderStream, jetstream.HeaderType, jetstream.HeaderVersion, jetstream.HeaderPosition, jetstream.HeaderRecordedAt} {
		for _, v := range []string{"", "bad"} {
			h := nats.Header{}
			for k, vs := range good {
				h[k] = vs
			}
			if v == "" {
				h.Del(name)
			} else if name == jetstream.HeaderStream || name == jetstream.HeaderType {
				h.Set(name+jetstream.Base64Suffix, "!not base64")
			} else {
				h.Set(name, v)
			}
			if _, err := jetstream.Decode(&nats.Msg{Header: h}); !errors.Is(err, eventstore.ErrInvalidArgument) {
				t.Errorf("%s=%q: %v", name, v, err)
			}
		}
	}
}

// lossyProxy relays NATS connections to addr and drops, once, the first
// message published with the given position, as a network might lose it
// in a reconnection. It returns the URL to connect to.
func lossyProxy(t testing.TB, addr string, position int64) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	marker := fmt.Appendf(nil, "\r\n%s: %d\r\n", jetstream.HeaderPosition, position)
	var dropped atomic.Bool
	go func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", addr)
			if err != nil {
				client.Close()
				continue
			}
			go func() { io.Copy(client, server); client.Close() }()
			go func() {
				defer server.Close()
				r, w := bufio.NewReader(client), bufio.NewWriter(server)
				for {
					line, err := r.ReadBytes('\n')
					if err != nil {
						return
					}
					var body []byte
					if f := strings.Fields(string(line)); len(f) > 0 && (f[0] == "PUB" || f[0] == "HPUB") {
						size, err := strconv.Atoi(f[len(f)-1])
						if err != nil {
							return
						}
						body = make([]byte, size+2) // payload and CRLF
						if _, err := io.ReadFull(r, body); err != nil {
							return
						}
						if bytes.Contains(body, marker) && !dropped.Swap(true) {
							continue
						}
					}
					w.Write(line)
					w.Write(body)
					if r.Buffered() == 0 {
						if err := w.Flush(); err != nil {
							return
						}
					}
				}
			}()
		}
	}()
	return "nats://" + ln.Addr().String()
}

// TestForward_MessageLostInTransitKeepsOrder loses one message in the
// middle of a batch on the wire, so the server stores the ones after it
// first unless it refuses them: the remote stream still ends up with
// every event once, in position order.
func TestForward_MessageLostInTransitKeepsOrder(t *testing.T) {
	t.Parallel()
	srv := runServer(t, 0, t.TempDir())
	nc := connect(t, srv.ClientURL())
	lossy := connect(t, lossyProxy(t, srv.Addr().String(), 120))
	sink, err := jetstream.New(context.Background(), lossy, &jetstream.Options{
		Stream: &jetstream.StreamConfig{Name: "EVENTS"}, AckTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	d := newDevice(t, sink)
	d.write(t, 10, 300)
	d.run()
	defer d.stop()
	d.waitForwarded(t, 300)
	inOrder(t, received(t, nc, "EVENTS"), 300)
}
