package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/edge-es/eventstore/inspector"
)

// cmdServe serves the web inspector of a store file, opened read-only.
func cmdServe(ctx context.Context, e *env, args []string) error {
	fs := newFlags("serve")
	addr := fs.String("addr", "127.0.0.1:7070", "listen on `HOST:PORT`; any other than loopback needs -token")
	token := fs.String("token", "", "require token `T`: open the printed URL, or send 'Authorization: Bearer T'")
	pos, err := parse(e, fs, args, 1)
	if err != nil {
		return err
	}
	loopback, err := isLoopback(*addr)
	if err != nil {
		return usagef("-addr %q: %v", *addr, err)
	}
	if !loopback && *token == "" {
		return usagef("-addr %s is reachable from other hosts: give -token too (or reach a loopback address through ssh -L)", *addr)
	}
	store, b, err := open(pos[0], false)
	if err != nil {
		return err
	}
	defer store.Close()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	h := inspector.Handler(store, &inspector.Options{Title: filepath.Base(pos[0]), SQLite: b, Token: *token})
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	url := "http://" + ln.Addr().String() + "/"
	if *token != "" {
		url += "?token=" + *token
	}
	fmt.Fprintf(e.stderr, "serving %s read-only at %s (Ctrl-C to stop)\n", pos[0], url)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	// The live tails end with ctx, the base of every request's context.
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return ctx.Err()
}

// isLoopback reports whether addr listens on loopback only: 127.0.0.0/8,
// ::1 or localhost. An empty host listens on every interface.
func isLoopback(addr string) (bool, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false, err
	}
	if host == "localhost" {
		return true, nil
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback(), nil
}
