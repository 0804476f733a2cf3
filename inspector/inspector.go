// Package inspector is a read-only web view of a store: its streams,
// events, consumers and forwarders, a live tail of new events, and
// [eventstore.Store.Verify]. It needs nothing but the standard library:
// its pages are html/template, a little plain JavaScript and CSS embedded
// in the binary, with no build step and no CDN, so it works offline on a
// device.
//
// It runs two ways: `eventstore serve FILE` opens a store file read-only
// and serves it on 127.0.0.1:7070, and [Handler] mounts it in an
// application's own server, as net/http/pprof is:
//
//	mux.Handle("/debug/events/", http.StripPrefix("/debug/events", inspector.Handler(store, nil)))
//
// Its links are relative, so it works under any prefix that ends in a
// slash; a request for the prefix without its slash is redirected.
//
// The handler never writes: it answers GET and HEAD only (anything else is
// 405 Method Not Allowed) and calls only the store's read methods and
// Verify. Every value it shows is escaped by html/template, and event data
// that is not valid UTF-8 JSON is shown as a hex dump. Its pages carry a
// Content-Security-Policy that allows no inline script and nothing from
// another origin. Access control is the mounting application's, or
// [Options.Token].
package inspector

import (
	"crypto/subtle"
	"embed"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/edge-es/eventstore"
	"github.com/edge-es/eventstore/sqlite"
)

//go:embed assets
var assets embed.FS

// Options configure [Handler]. The zero value (or nil) serves the store's
// pages without file stats, forwarders or a token.
type Options struct {
	// Title names the store in the pages' headings, e.g. its file name.
	// Default: "eventstore".
	Title string
	// SQLite, when the store runs on the SQLite backend, adds the file's
	// stats (size, schema version, events, streams, snapshots) to the
	// overview.
	SQLite *sqlite.Backend
	// Forwarders are the application's running forwarders, by name; the
	// overview shows each one's [eventstore.ForwarderStatus]. Forwarders
	// of other processes show only as checkpoints on the consumers page.
	Forwarders map[string]*eventstore.Forwarder
	// Token, when set, is required of every request: as the bearer token
	// of an Authorization header, or as the cookie the handler sets when a
	// URL carries it once as ?token=. Compared in constant time.
	Token string
	// PageSize is how many streams or events a page lists. Default: 50;
	// at most 1000.
	PageSize int
	// Clock is the time the pages compute ages and the append rate
	// against. Default: time.Now.
	Clock func() time.Time
}

const cookieName = "eventstore_inspector"

// Handler returns the inspector of store as an http.Handler. It serves:
//
//   - / the overview: file stats, the append rate over the last hour,
//     forwarders;
//   - /streams: the streams, by prefix and category, paged;
//   - /stream?id=S: a stream's events, paged either way, and its snapshots;
//   - /event?pos=P or ?id=UUID: one event, its data and metadata;
//   - /log: the global log, filtered by category, type and stream glob,
//     paged by position from any position;
//   - /tail: new events as they are committed (Server-Sent Events from
//     /tail/events);
//   - /consumers: checkpoints, lag and parked events;
//   - /verify: runs [eventstore.Store.Verify] when asked and shows its
//     report.
func Handler(store *eventstore.Store, opts *Options) http.Handler {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Title == "" {
		o.Title = "eventstore"
	}
	if o.PageSize <= 0 {
		o.PageSize = 50
	}
	o.PageSize = min(o.PageSize, 1000)
	if o.Clock == nil {
		o.Clock = time.Now
	}
	static, err := fs.Sub(assets, "assets/static")
	if err != nil {
		panic(err)
	}
	return &handler{store: store, opts: o, pages: parsePages(), static: http.FileServerFS(static)}
}

type handler struct {
	store  *eventstore.Store
	opts   Options
	pages  map[string]*template.Template
	static http.Handler
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cache-Control", "no-store")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hd.Set("Allow", "GET, HEAD")
		http.Error(w, "the inspector is read-only", http.StatusMethodNotAllowed)
		return
	}
	if !h.authorized(w, r) {
		return
	}
	path := strings.TrimPrefix(r.URL.Path, "/")
	if r.URL.Path == "" {
		// Mounted under a prefix and asked for it without its slash: the
		// relative links need it.
		u := url.URL{Path: requestPath(r) + "/", RawQuery: r.URL.RawQuery}
		http.Redirect(w, r, u.String(), http.StatusMovedPermanently)
		return
	}
	if strings.HasPrefix(path, "static/") {
		r2 := *r
		u := *r.URL
		u.Path = strings.TrimPrefix(path, "static")
		r2.URL = &u
		h.static.ServeHTTP(w, &r2)
		return
	}
	switch path {
	case "":
		h.overview(w, r)
	case "streams":
		h.streams(w, r)
	case "stream":
		h.stream(w, r)
	case "event":
		h.event(w, r)
	case "log":
		h.log(w, r)
	case "tail":
		h.tail(w, r)
	case "tail/events":
		h.tailEvents(w, r)
	case "consumers":
		h.consumers(w, r)
	case "verify":
		h.verify(w, r)
	default:
		http.NotFound(w, r)
	}
}

// authorized checks the token, if one is configured: a bearer token, the
// cookie, or ?token=, which sets the cookie and redirects to the URL
// without it so that the token does not stay in the address bar.
func (h *handler) authorized(w http.ResponseWriter, r *http.Request) bool {
	if h.opts.Token == "" {
		return true
	}
	if auth, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && h.tokenIs(auth) {
		return true
	}
	if c, err := r.Cookie(cookieName); err == nil && h.tokenIs(c.Value) {
		return true
	}
	q := r.URL.Query()
	if t := q.Get("token"); t != "" && h.tokenIs(t) {
		http.SetCookie(w, &http.Cookie{Name: cookieName, Value: t, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
		q.Del("token")
		u := url.URL{Path: requestPath(r), RawQuery: q.Encode()}
		http.Redirect(w, r, u.String(), http.StatusSeeOther)
		return false
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="eventstore inspector"`)
	http.Error(w, "a token is required: open the inspector's URL with ?token=...", http.StatusUnauthorized)
	return false
}

func (h *handler) tokenIs(t string) bool {
	return subtle.ConstantTimeCompare([]byte(t), []byte(h.opts.Token)) == 1
}

// requestPath is the path the client asked for, before any
// http.StripPrefix: where a redirect must point.
func requestPath(r *http.Request) string {
	if u, err := url.ParseRequestURI(r.RequestURI); err == nil && u.Path != "" {
		return u.Path
	}
	return r.URL.Path
}
