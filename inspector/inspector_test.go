package inspector_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/edge-es/eventstore"
	"github.com/edge-es/eventstore/inspector"
	"github.com/edge-es/eventstore/sqlite"
)

// newStore opens a store on a real SQLite file in the test's temp dir.
func newStore(t *testing.T) (*eventstore.Store, *sqlite.Backend, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "events.db")
	b, err := sqlite.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := eventstore.New(b, nil)
	t.Cleanup(func() { s.Close() })
	return s, b, path
}

func appendN(t *testing.T, s *eventstore.Store, stream string, n int) {
	t.Helper()
	for i := range n {
		if _, err := s.Append(context.Background(), stream, eventstore.Any, eventstore.Event{Type: "Happened", Data: fmt.Appendf(nil, `{"n":%d}`, i)}); err != nil {
			t.Fatal(err)
		}
	}
}

func get(t *testing.T, h http.Handler, target string) (int, string, http.Header) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	return rec.Code, rec.Body.String(), rec.Header()
}

func mustGet(t *testing.T, h http.Handler, target string) string {
	t.Helper()
	code, body, _ := get(t, h, target)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d\n%s", target, code, body)
	}
	return body
}

func contains(t *testing.T, body string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("page lacks %q", w)
		}
	}
}

func lacks(t *testing.T, body string, bad ...string) {
	t.Helper()
	for _, b := range bad {
		if strings.Contains(body, b) {
			t.Errorf("page has %q", b)
		}
	}
}

func TestPages(t *testing.T) {
	s, b, _ := newStore(t)
	appendN(t, s, "account-1", 3)
	appendN(t, s, "order-7", 2)
	ctx := context.Background()
	if err := s.SaveSnapshot(ctx, "account-1", 2, []byte(`{"balance":42}`), nil); err != nil {
		t.Fatal(err)
	}
	// A consumer of another process: its checkpoint and a parked event.
	if err := b.SaveCheckpoint(ctx, "billing", 3, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := b.Park(ctx, "billing", eventstore.ParkedEvent{Position: 2, StreamID: "account-1", Error: "card <declined>", Attempts: 3, ParkedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	h := inspector.Handler(s, &inspector.Options{SQLite: b, Title: "events.db"})

	body := mustGet(t, h, "/")
	contains(t, body, "events.db", "Appends over the last hour", "<svg", "<rect", "5 events since")
	body = mustGet(t, h, "/streams")
	contains(t, body, `href="stream?id=account-1"`, `href="stream?id=order-7"`)
	body = mustGet(t, h, "/streams?category=order")
	contains(t, body, "order-7")
	lacks(t, body, "account-1")
	body = mustGet(t, h, "/streams?prefix=acc")
	contains(t, body, "account-1")
	lacks(t, body, "order-7")
	body = mustGet(t, h, "/stream?id=account-1")
	contains(t, body, "version 2", "Happened", `{&#34;n&#34;:1}`, "version 2 (position 3)")
	body = mustGet(t, h, "/event?pos=4")
	contains(t, body, "Event 4", "order-7", "&#34;n&#34;: 0")
	body = mustGet(t, h, "/log?category=account")
	contains(t, body, "account-1")
	lacks(t, body, "order-7")
	body = mustGet(t, h, "/log?glob=order-*")
	contains(t, body, "order-7")
	lacks(t, body, "account-1")
	body = mustGet(t, h, "/log?type=Nothing")
	contains(t, body, "no events")
	body = mustGet(t, h, "/consumers")
	contains(t, body, "billing", "<td>2</td>", "behind", "card &lt;declined&gt;", `href="event?pos=2"`)
	body = mustGet(t, h, "/verify")
	lacks(t, body, "Report")
	body = mustGet(t, h, "/verify?run=1")
	contains(t, body, "OK", "log, streams", "integrity")
	mustGet(t, h, "/tail")
	mustGet(t, h, "/static/app.js")

	if code, _, _ := get(t, h, "/stream?id=nothing-here"); code != http.StatusNotFound {
		t.Errorf("a missing stream: %d, want 404", code)
	}
	if code, _, _ := get(t, h, "/log?from=-3"); code != http.StatusBadRequest {
		t.Errorf("a negative position: %d, want 400", code)
	}
	if code, _, _ := get(t, h, "/nowhere"); code != http.StatusNotFound {
		t.Errorf("an unknown page: %d, want 404", code)
	}
}

func TestPaging(t *testing.T) {
	s, _, _ := newStore(t)
	appendN(t, s, "big-1", 25)
	for i := range 12 {
		appendN(t, s, fmt.Sprintf("many-%02d", i), 1)
	}
	h := inspector.Handler(s, &inspector.Options{PageSize: 10})

	// Streams: after the last of a page.
	body := mustGet(t, h, "/streams?prefix=many-")
	contains(t, body, "many-00", "many-09", `after=many-09`)
	lacks(t, body, "many-10")
	body = mustGet(t, h, "/streams?prefix=many-&after=many-09")
	contains(t, body, "many-10", "many-11")
	lacks(t, body, "many-09\"", "rel=\"next\"")

	// A stream forward, then backward from its end.
	body = mustGet(t, h, "/stream?id=big-1")
	contains(t, body, `{&#34;n&#34;:9}`, "from=10")
	lacks(t, body, `{&#34;n&#34;:10}`)
	body = mustGet(t, h, "/stream?id=big-1&from=10")
	contains(t, body, `{&#34;n&#34;:10}`, `{&#34;n&#34;:19}`, "from=9&amp;dir=back")
	body = mustGet(t, h, "/stream?id=big-1&dir=back")
	contains(t, body, `{&#34;n&#34;:24}`, `{&#34;n&#34;:15}`, "from=14&amp;dir=back")
	lacks(t, body, `{&#34;n&#34;:14}`, `rel="next"`)

	// The log: the newest first, then from any position.
	body = mustGet(t, h, "/log")
	contains(t, body, "event?pos=37", "event?pos=28", "from=27&amp;dir=back")
	lacks(t, body, "event?pos=27\"")
	body = mustGet(t, h, "/log?from=5")
	contains(t, body, "event?pos=5\"", "event?pos=14\"", "from=15\"", "from=4&amp;dir=back")
	lacks(t, body, "event?pos=4\"", "event?pos=15\"")
}

// TestHostilePayload stores what an attacker would: markup that closes a
// script, attributes, and bytes that are not UTF-8. No page may carry it
// as markup.
func TestHostilePayload(t *testing.T) {
	s, _, _ := newStore(t)
	ctx := context.Background()
	stream := `x-"><script>alert(1)</script>`
	evil := []byte(`{"a":"</script><script>alert(1)</script>","b":"<img src=x onerror=alert(2)>"}`)
	invalid := []byte("\xff\xfe</script><marquee>\x80bold</marquee>")
	if _, err := s.Append(ctx, stream, eventstore.Any,
		eventstore.Event{Type: `T</script><script>alert(3)</script>`, Data: evil, Metadata: invalid},
		eventstore.Event{Type: "Raw", Data: invalid}); err != nil {
		t.Fatal(err)
	}
	h := inspector.Handler(s, nil)
	for _, target := range []string{"/", "/streams", "/stream?id=" + urlQuery(stream), "/event?pos=1", "/event?pos=2", "/log", "/log?type=" + urlQuery(`T</script><script>alert(3)</script>`)} {
		body := mustGet(t, h, target)
		lacks(t, body, "<script>alert", "</script><", "<img", "<marquee>")
		if !utf8.ValidString(body) {
			t.Errorf("%s: the page is not valid UTF-8", target)
		}
		if strings.Count(body, "<script") != 1 {
			t.Errorf("%s: %d script elements, want only the page's own", target, strings.Count(body, "<script"))
		}
	}
	body := mustGet(t, h, "/event?pos=2")
	contains(t, body, "not JSON: hex", "ff fe 3c 2f")
	body = mustGet(t, h, "/event?pos=1")
	contains(t, body, "&lt;/script&gt;&lt;script&gt;alert(1)")
}

func urlQuery(s string) string {
	return strings.NewReplacer("%", "%25", "&", "%26", "#", "%23", "+", "%2B", " ", "%20", `"`, "%22", "<", "%3C", ">", "%3E").Replace(s)
}

func TestCorrelationLinks(t *testing.T) {
	s, _, _ := newStore(t)
	ctx := context.Background()
	res, err := s.Append(ctx, "cart-1", eventstore.Any, eventstore.Event{Type: "Checked", Data: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	var cause eventstore.RecordedEvent
	for e, err := range s.ReadStream(ctx, "cart-1", eventstore.ReadOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		cause = e
	}
	_ = res
	meta := fmt.Appendf(nil, `{"$correlationId":%q,"causation_id":%q}`, cause.ID, cause.ID)
	appendN(t, s, "noise-1", 3)
	if _, err := s.Append(ctx, "order-1", eventstore.Any, eventstore.Event{Type: "Ordered", Data: []byte(`{}`), Metadata: meta}); err != nil {
		t.Fatal(err)
	}
	h := inspector.Handler(s, nil)
	body := mustGet(t, h, "/event?pos=5")
	contains(t, body, `href="event?id=`+cause.ID.String()+`"`, "$correlationId", "causation_id")
	body = mustGet(t, h, "/event?id="+cause.ID.String())
	contains(t, body, "Event 1", "cart-1", "Checked")
	if code, _, _ := get(t, h, "/event?id=00000000-0000-4000-8000-000000000000"); code != http.StatusNotFound {
		t.Errorf("an unknown ID: %d, want 404", code)
	}
}

func TestReadOnlyMethods(t *testing.T) {
	s, _, _ := newStore(t)
	h := inspector.Handler(s, nil)
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(m, "/verify?run=1", strings.NewReader("x")))
		if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" {
			t.Errorf("%s: %d Allow %q, want 405 GET, HEAD", m, rec.Code, rec.Header().Get("Allow"))
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodHead, "/", nil))
	if rec.Code != http.StatusOK || rec.Body.Len() != 0 {
		t.Errorf("HEAD: %d with %d bytes", rec.Code, rec.Body.Len())
	}
}

func TestHeaders(t *testing.T) {
	s, _, _ := newStore(t)
	_, body, hd := get(t, inspector.Handler(s, nil), "/")
	csp := hd.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP %q", csp)
	}
	if hd.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("X-Content-Type-Options %q", hd.Get("X-Content-Type-Options"))
	}
	// No inline script: the only script element loads the embedded file.
	if strings.Count(body, "<script") != 1 || !strings.Contains(body, `<script src="static/app.js" defer></script>`) {
		t.Errorf("scripts of the page:\n%s", body)
	}
}

func TestToken(t *testing.T) {
	s, _, _ := newStore(t)
	h := inspector.Handler(s, &inspector.Options{Token: "s3cret"})
	for _, target := range []string{"/", "/streams", "/tail/events", "/static/app.js", "/?token=wrong"} {
		if code, _, _ := get(t, h, target); code != http.StatusUnauthorized {
			t.Errorf("%s without the token: %d, want 401", target, code)
		}
	}
	req := httptest.NewRequest(http.MethodGet, "/streams", nil)
	req.Header.Set("Authorization", "Bearer s3cret")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Errorf("bearer: %d", rec.Code)
	}
	req.Header.Set("Authorization", "Bearer s3cre")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized {
		t.Errorf("a wrong bearer: %d", rec.Code)
	}

	// ?token= sets the cookie and redirects to the URL without it.
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/log?token=s3cret&type=A", nil))
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/log?type=A" {
		t.Fatalf("?token=: %d to %q", rec.Code, rec.Header().Get("Location"))
	}
	cookies := rec.Result().Cookies()
	if len(cookies) != 1 || !cookies[0].HttpOnly {
		t.Fatalf("cookies %v", cookies)
	}
	req = httptest.NewRequest(http.MethodGet, "/log?type=A", nil)
	req.AddCookie(cookies[0])
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Errorf("with the cookie: %d", rec.Code)
	}
}

func TestMountedUnderPrefix(t *testing.T) {
	s, _, _ := newStore(t)
	appendN(t, s, "a-1", 1)
	mux := http.NewServeMux()
	mux.Handle("/debug/events/", http.StripPrefix("/debug/events", inspector.Handler(s, nil)))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	res, err := http.Get(srv.URL + "/debug/events")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Request.URL.Path != "/debug/events/" || !strings.Contains(string(body), "Overview") {
		t.Fatalf("%d at %s", res.StatusCode, res.Request.URL)
	}
	res, err = http.Get(srv.URL + "/debug/events/stream?id=a-1")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("stream page: %d", res.StatusCode)
	}
}

// TestTail: an event appended while the browser listens arrives as a
// Server-Sent Event, and the events stored before it do not; appended by
// the handler's own store, or by another writer of the file, as another
// process would.
func TestTail(t *testing.T) {
	for _, other := range []bool{false, true} {
		t.Run(fmt.Sprintf("other writer %v", other), func(t *testing.T) {
			s, _, path := newStore(t)
			appendN(t, s, "old-1", 2)
			w := s
			if other {
				b, err := sqlite.Open(path, nil)
				if err != nil {
					t.Fatal(err)
				}
				w = eventstore.New(b, nil)
				defer w.Close()
			}
			srv := httptest.NewServer(inspector.Handler(s, nil))
			defer srv.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/tail/events", nil)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
				t.Fatalf("Content-Type %q", ct)
			}
			lines := bufio.NewScanner(res.Body)
			if !lines.Scan() || lines.Text() != ": subscribed" {
				t.Fatalf("first line %q", lines.Text())
			}
			if _, err := w.Append(ctx, "new-1", eventstore.Any, eventstore.Event{Type: "Arrived", Data: []byte(`{"x":"</script>"}`)}); err != nil {
				t.Fatal(err)
			}
			// The first event: its lines up to the blank line that ends it.
			var got []string
			for lines.Scan() {
				if lines.Text() == "" && len(got) > 0 {
					break
				}
				if lines.Text() != "" {
					got = append(got, lines.Text())
				}
			}
			if len(got) != 2 || got[0] != "id: 3" || !strings.HasPrefix(got[1], `data: {"position":3,"stream":"new-1","version":0,"type":"Arrived"`) || strings.Contains(got[1], "</script>") {
				t.Fatalf("event: %q", got)
			}
		})
	}
}
