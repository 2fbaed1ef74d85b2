// Package web is the demo page of the local gateway (plain HTML, CSS and
// JavaScript modules, no build step), embedded in the wslocal binary. It is
// also examples/chat's front end: open the page with ?url=wss://... to point
// it at a deployed API.
package web

import (
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"

	jsclient "github.com/wsforge/terraform-aws-websocket/clients/js"
	"github.com/wsforge/terraform-aws-websocket/lambda/localgw"
)

//go:embed index.html app.js app.css pusher.html pusher.js
var files embed.FS

// Files returns the page's files (index.html, app.js, app.css); the page
// also loads client.js, the JavaScript client, which Handler serves.
func Files() fs.FS { return files }

// Handler serves the page at /, the JavaScript client (clients/js/index.js)
// as /client.js, and /config.json, which tells the page the stage of the
// WebSocket endpoint on the same host.
func Handler(stage string) http.Handler {
	mux := http.NewServeMux()
	static := http.FileServerFS(files)
	cfg, _ := json.Marshal(map[string]string{"stage": stage})
	mux.HandleFunc("GET /config.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(cfg)
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		static.ServeHTTP(w, r)
	})
	mux.HandleFunc("GET /client.js", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(jsclient.Source)
	})
	mux.Handle("GET /app.js", static)
	mux.Handle("GET /app.css", static)
	// Any other path answers as execute-api does for a route it lacks.
	mux.Handle("/", localgw.UnknownPath)
	return mux
}
