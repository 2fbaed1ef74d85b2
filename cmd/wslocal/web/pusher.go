package web

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/wsforge/terraform-aws-websocket/lambda/pusher"
)

// vendorFiles are the browser builds the Pusher page loads, inside an npm
// node_modules folder (test/pusher's, pinned by its package-lock.json).
var vendorFiles = map[string]string{
	"/vendor/pusher.min.js": "pusher-js/dist/web/pusher.min.js",
	"/vendor/echo.iife.js":  "laravel-echo/dist/echo.iife.js",
}

// WithPusher adds the presence chat page to next: /pusher.html and
// /pusher.js, /pusher-config.json (the app key), the libraries from
// nodeModules under /vendor/, and POST /pusher-auth, which signs every
// channel it is asked for with the app's secret. That endpoint is a local
// stand-in for an app's own authorisation endpoint (Laravel's
// /broadcasting/auth): it authorises anyone, so only the local gateway has it.
func WithPusher(next http.Handler, app pusher.App, nodeModules string) http.Handler {
	mux := http.NewServeMux()
	static := http.FileServerFS(files)
	mux.Handle("GET /pusher.html", static)
	mux.Handle("GET /pusher.js", static)
	cfg, _ := json.Marshal(map[string]string{"key": app.Key})
	mux.HandleFunc("GET /pusher-config.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(cfg)
	})
	for path, rel := range vendorFiles {
		file := filepath.Join(nodeModules, filepath.FromSlash(rel))
		mux.HandleFunc("GET "+path, func(w http.ResponseWriter, r *http.Request) {
			if _, err := os.Stat(file); err != nil {
				http.Error(w, "missing "+rel+": run `npm ci` in test/pusher or set -web-node-modules", http.StatusNotFound)
				return
			}
			w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
			http.ServeFile(w, r, file)
		})
	}
	mux.HandleFunc("POST /pusher-auth", func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		sid, ch := r.PostForm.Get("socket_id"), r.PostForm.Get("channel_name")
		if !pusher.ValidSocketID(sid) || !pusher.ValidChannel(ch) {
			http.Error(w, "socket_id and channel_name required", http.StatusBadRequest)
			return
		}
		out := map[string]string{}
		channelData := ""
		if pusher.IsPresence(ch) {
			user := strings.TrimSpace(r.PostForm.Get("user_id"))
			if user == "" {
				http.Error(w, "user_id required for presence channels", http.StatusBadRequest)
				return
			}
			b, _ := json.Marshal(map[string]any{"user_id": user, "user_info": map[string]string{"id": user, "name": r.PostForm.Get("user_name")}})
			channelData = string(b)
			out["channel_data"] = channelData
		}
		out["auth"] = app.ChannelAuth(sid, ch, channelData)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	})
	mux.Handle("/", next)
	return mux
}
