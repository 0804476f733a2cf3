package main_test

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/edge-es/eventstore"
	"github.com/edge-es/eventstore/sqlite"
)

// chromium is Debian's chromium, which .ci/run installs.
const chromium = "/usr/bin/chromium"

// serve starts 'eventstore serve' on path with args and returns its URL
// (the one it prints, token included).
func serve(t *testing.T, ctx context.Context, path string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(ctx, bin, append([]string{"serve", path, "-addr", "127.0.0.1:0"}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(stderr).ReadString('\n')
	if err != nil {
		t.Fatalf("serve: %q %v", line, err)
	}
	url := regexp.MustCompile(`http://\S+`).FindString(line)
	if url == "" {
		t.Fatalf("serve printed no URL: %q", line)
	}
	return url
}

// writer opens the store file as an application would, beside serve.
func writer(t *testing.T, path string) *eventstore.Store {
	t.Helper()
	b, err := sqlite.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := eventstore.New(b, nil)
	t.Cleanup(func() { s.Close() })
	return s
}

func add(t *testing.T, s *eventstore.Store, stream, typ, data string) {
	t.Helper()
	if _, err := s.Append(context.Background(), stream, eventstore.Any, eventstore.Event{Type: typ, Data: []byte(data)}); err != nil {
		t.Fatal(err)
	}
}

// TestServe_Safety: serve refuses a non-loopback address without a token;
// with one, it wants the token of every request; it answers no writes.
func TestServe_Safety(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "events.db")
	s := writer(t, path)
	add(t, s, "order-1", "Placed", `{}`)

	_, errOut, code := run(t, "", "serve", path, "-addr", "0.0.0.0:0")
	if code != 2 || !strings.Contains(errOut, "-token") {
		t.Errorf("0.0.0.0 without -token: exit %d: %s", code, errOut)
	}
	_, errOut, code = run(t, "", "serve", path, "-addr", ":7070")
	if code != 2 || !strings.Contains(errOut, "-token") {
		t.Errorf(":7070 without -token: exit %d: %s", code, errOut)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	url := serve(t, ctx, path, "-token", "t0ken")
	base, _, _ := strings.Cut(url, "?")
	for _, c := range []struct {
		method, auth string
		want         int
	}{
		{"GET", "", http.StatusUnauthorized},
		{"GET", "Bearer nope", http.StatusUnauthorized},
		{"GET", "Bearer t0ken", http.StatusOK},
		{"POST", "Bearer t0ken", http.StatusMethodNotAllowed},
		{"DELETE", "Bearer t0ken", http.StatusMethodNotAllowed},
	} {
		req, _ := http.NewRequestWithContext(ctx, c.method, base+"streams", nil)
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != c.want {
			t.Errorf("%s %q: %d, want %d", c.method, c.auth, res.StatusCode, c.want)
		}
		if c.want == http.StatusOK && !strings.Contains(string(body), "order-1") {
			t.Errorf("streams page lacks order-1")
		}
	}
	// The URL it prints logs in: the token becomes a cookie.
	jar, _ := cookiejar.New(nil)
	res, err := (&http.Client{Jar: jar}).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("the printed URL: %d", res.StatusCode)
	}
}

// TestServe_Browser drives the inspector in headless Chromium against a
// real store file that another writer appends to meanwhile: the overview,
// a stream search, a stream, an event, and the live tail showing an event
// appended during the test. It saves a screenshot of each page in the
// test's temp dir (-test.v logs where), or in $EVENTSTORE_SCREENSHOTS
// when set, to keep them.
func TestServe_Browser(t *testing.T) {
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("the browser test needs Debian's chromium at %s (apt-get install chromium): %v", chromium, err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "events.db")
	s := writer(t, path)
	for i := range 15 {
		add(t, s, fmt.Sprintf("order-%d", i), "OrderPlaced", fmt.Sprintf(`{"order":%d,"items":["tea","cups"],"note":"</script><b>x</b>"}`, i))
	}
	add(t, s, "order-12", "OrderShipped", `{"carrier":"post"}`)
	add(t, s, "account-7", "AccountOpened", `{"owner":"ann"}`)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	url := serve(t, ctx, path)

	actx, acancel := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromium),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1280, 900),
	)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()

	shot := func(name string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			png, err := chromedp.FullScreenshot(100)(ctx, tg)
			if err != nil {
				return err
			}
			file := filepath.Join(cmp.Or(os.Getenv("EVENTSTORE_SCREENSHOTS"), dir), name+".png")
			t.Logf("screenshot: %s", file)
			return os.WriteFile(file, png, 0o644)
		})
	}
	do := func(name string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, steps...); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	text := func(sel chromedp.CSS) string {
		t.Helper()
		s, err := chromedp.Run(bctx, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}

	do("overview",
		chromedp.Navigate(url),
		chromedp.WaitVisible(chromedp.CSS(".chart svg")),
		shot("1-overview"))
	got := strings.Join(strings.Fields(text("main")), " ")
	for _, want := range []string{"17 events", "16 streams", "Appends over the last hour", "17 events since"} {
		if !strings.Contains(got, want) {
			t.Errorf("overview lacks %q:\n%s", want, got)
		}
	}

	do("search a stream",
		chromedp.Navigate(url+"streams"),
		chromedp.SendKeys(chromedp.ID("prefix"), "order-1"),
		chromedp.Click(chromedp.ID("search")),
		chromedp.WaitVisible(chromedp.CSS(`a[href="stream?id=order-12"]`)),
		shot("2-streams"))
	got = text("table.streams")
	if strings.Contains(got, "account-7") || strings.Contains(got, "order-2") || !strings.Contains(got, "order-14") || !strings.Contains(got, "order-1\t") {
		t.Errorf("prefix order-1 lists:\n%s", got)
	}

	do("open a stream",
		chromedp.Click(chromedp.CSS(`a[href="stream?id=order-12"]`)),
		chromedp.WaitVisible(chromedp.CSS(`table.events`)),
		shot("3-stream"))
	got = text("main")
	if !strings.Contains(got, "OrderShipped") || !strings.Contains(got, "OrderPlaced") {
		t.Errorf("stream order-12:\n%s", got)
	}

	do("open an event",
		chromedp.Click(chromedp.CSS(`table.events tbody tr:first-child a`)),
		chromedp.WaitVisible(chromedp.CSS(`pre.payload`)),
		shot("4-event"))
	got = text("pre.payload")
	if !strings.Contains(got, `"note": "</script><b>x</b>"`) || !strings.Contains(got, `"order": 12`) {
		t.Errorf("event data, as text:\n%s", got)
	}

	do("open the live tail",
		chromedp.Navigate(url+"tail"),
		chromedp.WaitVisible(chromedp.CSS(`#tail[data-open="1"]`)))
	// Appended by another writer of the file after the tail subscribed:
	// it reaches serve through the file's change watcher.
	add(t, s, "sensor-3", "TemperatureRead", `{"celsius":21.5}`)
	do("see the appended event",
		chromedp.WaitVisible(chromedp.CSS(`#tail tbody tr a[href="stream?id=sensor-3"]`)),
		shot("5-tail"))
	got = text("#tail tbody")
	if !strings.Contains(got, "TemperatureRead") || !strings.Contains(got, `{"celsius":21.5}`) || strings.Contains(got, "OrderPlaced") {
		t.Errorf("live tail:\n%s", got)
	}

	do("consumers and verify",
		chromedp.Navigate(url+"consumers"),
		chromedp.WaitVisible(chromedp.CSS("main h1")),
		shot("6-consumers"),
		chromedp.Navigate(url+"verify"),
		chromedp.Click(chromedp.ID("run")),
		chromedp.WaitVisible(chromedp.CSS("table.kv")),
		shot("7-verify"))
	got = text("main")
	if !strings.Contains(got, "OK") || strings.Contains(got, "NOT OK") || !strings.Contains(got, "log, streams, snapshots, checkpoints") {
		t.Errorf("verify:\n%s", got)
	}
}

// TestServe_ReadOnly serves a store no process has open and visits every
// page, Verify included: the file is unchanged, and nothing appears
// beside it.
func TestServe_ReadOnly(t *testing.T) {
	t.Parallel()
	path := fixture(t)
	before, sum := entries(t, filepath.Dir(path)), hash(t, path)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	url := serve(t, ctx, path)
	for _, page := range []string{"", "streams", "stream?id=order-1", "event?pos=1", "log", "tail", "consumers", "verify?run=1"} {
		res, err := http.Get(url + page)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Errorf("%s: %d", page, res.StatusCode)
		}
	}
	if after := entries(t, filepath.Dir(path)); !slices.Equal(after, before) {
		t.Errorf("serve left %v beside the store (was %v)", after, before)
	}
	if hash(t, path) != sum {
		t.Errorf("serve changed the file")
	}
}
