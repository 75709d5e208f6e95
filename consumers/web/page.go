package web

import (
	"embed"
	"io/fs"
	"net/http"
)

// static is the page: plain HTML, CSS and a little JavaScript, with hls.js
// vendored from the npm registry (static/hls.js/README.md). Nothing is
// built at run time and nothing is fetched from elsewhere.
//
//go:embed static
var static embed.FS

// contentPolicy keeps the page to this daemon's own resources; blob: is
// where hls.js puts its media source and worker.
const contentPolicy = "default-src 'self'; media-src 'self' blob:; worker-src 'self' blob:; img-src 'self' data: blob:; " +
	"connect-src 'self'; frame-ancestors 'self'"

// pageRoutes adds GET / and GET /static/.
func pageRoutes(mux *http.ServeMux) {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree has a static directory: a build error otherwise
	}
	files := http.FileServerFS(sub)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", contentPolicy)
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeFileFS(w, r, sub, "index.html")
	})
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})))
}
