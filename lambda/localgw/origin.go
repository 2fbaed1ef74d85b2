package localgw

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/wsforge/terraform-aws-websocket/lambda/mgmtapitest"
	"github.com/wsforge/terraform-aws-websocket/lambda/sender"
)

// crossOrigin refuses a browser request from another origin with 403 (the
// management and Invoke APIs change state and are not authenticated
// locally: any web page could otherwise post a text/plain form to them) and
// reports whether it answered. An allowed origin gets CORS headers, and its
// preflight request is answered here.
func (g *Gateway) crossOrigin(w http.ResponseWriter, r *http.Request, forbidden func(http.ResponseWriter)) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || sameOrigin(origin, r.Host) {
		return false
	}
	norm, err := normalizeOrigin(origin)
	if err != nil || !(slices.Contains(g.cfg.AllowedOrigins, norm) || slices.Contains(g.cfg.AllowedOrigins, "*")) {
		g.log.Warn("cross-origin request refused; allow its origin with -allow-origin (Config.AllowedOrigins)",
			"origin", origin, "method", r.Method, "path", r.URL.EscapedPath())
		forbidden(w)
		return true
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Add("Vary", "Origin")
	// A page's AWS SDK reads these to tell a 410 from a 403, or a function
	// error from a result: browsers hide every other header.
	h.Set("Access-Control-Expose-Headers", exposedHeaders)
	if r.Method != http.MethodOptions || r.Header.Get("Access-Control-Request-Method") == "" {
		return false
	}
	h.Set("Access-Control-Allow-Methods", "GET, POST, DELETE")
	if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
		h.Set("Access-Control-Allow-Headers", req)
	}
	h.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
	return true
}

// sameOrigin reports whether origin is the gateway's own, http://HOST as the
// request addressed it. Only loopback names and IP addresses count: with any
// other name the page may be a DNS-rebinding attacker's, whose origin matches
// the Host header too.
func sameOrigin(origin, host string) bool {
	if !strings.EqualFold(origin, "http://"+host) {
		return false
	}
	name := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		name = h
	}
	name = strings.ToLower(strings.Trim(name, "[]"))
	return name == "localhost" || strings.HasSuffix(name, ".localhost") || net.ParseIP(name) != nil
}

// normalizeOrigin lower-cases an origin and drops a trailing slash; "*" and
// "null" (sandboxed pages, file://) are kept as they are.
func normalizeOrigin(o string) (string, error) {
	if o == "*" || o == "null" {
		return o, nil
	}
	u, err := url.Parse(strings.TrimSuffix(o, "/"))
	if err != nil || u.Scheme == "" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return "", fmt.Errorf("origin %q: want scheme://host[:port]", o)
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), nil
}

// writeManagementForbidden is API Gateway's 403 for a request it refuses.
func writeManagementForbidden(w http.ResponseWriter) {
	mgmtapitest.WriteError(w, http.StatusForbidden, sender.ErrorTypeForbidden, "Forbidden")
}

// writeInvokeForbidden is Lambda's 403 for a caller it refuses.
func writeInvokeForbidden(w http.ResponseWriter) {
	writeLambdaError(w, http.StatusForbidden, "AccessDeniedException", "Cross-origin request refused")
}

// exposedHeaders are the AWS answer headers an allowed cross-origin caller
// may read: the error type, request id and Lambda's function-error, log
// and version headers.
const exposedHeaders = "x-amzn-ErrorType, x-amzn-RequestId, X-Amz-Function-Error, X-Amz-Log-Result, X-Amz-Executed-Version"
