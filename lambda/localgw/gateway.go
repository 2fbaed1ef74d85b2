package localgw

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/coder/websocket"
	"golang.org/x/sync/semaphore"

	"github.com/wsforge/terraform-aws-websocket/lambda/auth"
	"github.com/wsforge/terraform-aws-websocket/lambda/mgmtapitest"
)

// API Gateway's WebSocket limits, the defaults of Config.
const (
	// DefaultMaxMessageSize is the largest message a client may send (128 KB).
	DefaultMaxMessageSize = 128 * 1024
	// DefaultFrameSize is the largest frame a client may send and the size of
	// the frames messages are sent in (32 KB).
	DefaultFrameSize = 32 * 1024
	// DefaultIdleTimeout closes a connection without messages for 10 minutes.
	DefaultIdleTimeout = 10 * time.Minute
	// DefaultMaxDuration closes every connection after 2 hours.
	DefaultMaxDuration = 2 * time.Hour
	// DefaultMaxQueuedBytes bounds, per connection, the outgoing messages
	// waiting to be written and the client messages waiting for their route (1 MiB).
	DefaultMaxQueuedBytes = 1 << 20
	// DefaultFunctionTimeout bounds one invocation of a function (Lambda's maximum timeout).
	DefaultFunctionTimeout = 15 * time.Minute
	// DefaultStage is the stage of the WebSocket endpoint, ws://host/dev.
	DefaultStage = "dev"
	// DefaultAPIID is the apiId events carry.
	DefaultAPIID = "wslocal"
	// DefaultRegion and DefaultAccountID fill the ARNs the gateway builds.
	DefaultRegion    = "us-east-1"
	DefaultAccountID = "000000000000"
)

// Route keys of the built-in routes.
const (
	RouteConnect    = "$connect"
	RouteDisconnect = "$disconnect"
	RouteDefault    = "$default"
)

// requestTimeLayout is API Gateway's requestTime format: "20/Jan/2024:11:55:00 +0000".
const requestTimeLayout = "02/Jan/2006:15:04:05 -0700"

// Config configures a Gateway. Only WebSocket is required.
type Config struct {
	// Stage is the stage name, the first path segment. Default "dev".
	Stage string
	// APIID is the apiId events carry. Default "wslocal".
	APIID string
	// Region and AccountID fill methodArn and function ARNs. Defaults us-east-1, 000000000000.
	Region, AccountID string
	// WebSocket is the integration of $connect, $disconnect and $default.
	WebSocket Function
	// Routes are custom route keys, selected by the frame's "action" field,
	// with their integrations. Frames whose action is not a key here go to $default.
	Routes map[string]Function
	// Authorizer is the REQUEST authorizer of $connect; nil means none.
	Authorizer Function
	// IdentitySources are the authorizer's identity sources,
	// route.request.querystring.NAME or route.request.header.NAME: a
	// handshake where any of them is missing or empty is refused with 401
	// before the authorizer runs, as API Gateway does. Empty means no check.
	IdentitySources []string
	// Functions are the functions the Lambda Invoke API serves, by name.
	Functions map[string]Function
	// ResolveFunction serves Invoke API names missing from Functions; nil
	// or a nil result answers 404 ResourceNotFoundException.
	ResolveFunction func(name string) Function
	// MaxMessageSize is the largest client message; a bigger one closes the
	// connection with 1009. Default 128 KB.
	MaxMessageSize int
	// FrameSize is the largest frame a client may send (a bigger one closes
	// the connection with 1009; messages up to MaxMessageSize may be
	// fragmented) and the size of the frames outgoing messages are split
	// into. Default 32 KB.
	FrameSize int
	// MaxQueuedBytes bounds each connection's outgoing messages waiting to be
	// written (POSTs and route responses): a POST whose message does not fit
	// answers 429 LimitExceededException, which AWS's model documents for a
	// full client-side buffer, and the connection stays open (a route
	// response that does not fit is dropped and logged). It also bounds the
	// client messages read but not yet dispatched (the gateway then stops
	// reading). Default 1 MiB.
	MaxQueuedBytes int
	// SendTimeout bounds the write of one outgoing message: a client that
	// has not read it by then is closed with 1008, and the POST (and every
	// later one) answers 410 GoneException. Default 30 s.
	SendTimeout time.Duration
	// AllowedOrigins are the browser origins (scheme://host[:port], or "*"
	// for any) besides the gateway's own that may call the management and
	// Invoke APIs. A request with another Origin header is refused with 403,
	// so a web page the developer visits cannot broadcast or disconnect.
	// Requests without an Origin header (SDKs, curl) are not affected.
	AllowedOrigins []string
	// AllowBinary accepts binary messages from clients and passes them base64
	// encoded: a local extension. API Gateway WebSocket APIs take no binary
	// frames from clients and close the connection with 1003, as the gateway
	// does by default.
	AllowBinary bool
	// FunctionTimeout bounds one invocation of a function. Invocations run to
	// completion when their caller hangs up, as on Lambda. Default 15 minutes;
	// a Bootstrap also enforces its own BootstrapConfig.Timeout.
	FunctionTimeout time.Duration
	// IdleTimeout closes connections without messages. Default 10 minutes.
	IdleTimeout time.Duration
	// MaxDuration closes connections after this long. Default 2 hours.
	MaxDuration time.Duration
	// Logger logs one line per connection event; nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// NotFound serves every path the gateway does not own (a demo page);
	// nil answers 403 MissingAuthenticationTokenException as API Gateway does.
	NotFound http.Handler
}

// Gateway emulates an API Gateway WebSocket API stage and the Lambda Invoke
// API. It is an http.Handler; create it with New and stop it with Shutdown.
type Gateway struct {
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	conns    map[string]*conn
	closing  bool
	sessions sync.WaitGroup // one per handshake or connection, done after its $disconnect
	async    sync.WaitGroup // asynchronous (Event) invocations still running
}

// New validates cfg, fills in defaults and returns a Gateway.
func New(cfg Config) (*Gateway, error) {
	if cfg.WebSocket == nil {
		return nil, errors.New("localgw: Config.WebSocket is required")
	}
	if cfg.Stage == "" {
		cfg.Stage = DefaultStage
	}
	if err := validateStage(cfg.Stage); err != nil {
		return nil, err
	}
	for key := range cfg.Routes {
		if key == "" || strings.HasPrefix(key, "$") {
			return nil, fmt.Errorf("localgw: invalid custom route key %q", key)
		}
		if cfg.Routes[key] == nil {
			return nil, fmt.Errorf("localgw: route %q has no function", key)
		}
	}
	for _, src := range cfg.IdentitySources {
		if _, _, err := parseIdentitySource(src); err != nil {
			return nil, fmt.Errorf("localgw: %w", err)
		}
	}
	if cfg.APIID == "" {
		cfg.APIID = DefaultAPIID
	}
	if cfg.Region == "" {
		cfg.Region = DefaultRegion
	}
	if cfg.AccountID == "" {
		cfg.AccountID = DefaultAccountID
	}
	if cfg.MaxMessageSize <= 0 {
		cfg.MaxMessageSize = DefaultMaxMessageSize
	}
	if cfg.FrameSize <= 0 {
		cfg.FrameSize = DefaultFrameSize
	}
	if cfg.SendTimeout <= 0 {
		cfg.SendTimeout = DefaultSendTimeout
	}
	if cfg.MaxQueuedBytes <= 0 {
		cfg.MaxQueuedBytes = DefaultMaxQueuedBytes
	}
	origins := make([]string, 0, len(cfg.AllowedOrigins))
	for _, o := range cfg.AllowedOrigins {
		n, err := normalizeOrigin(o)
		if err != nil {
			return nil, fmt.Errorf("localgw: allowed origin: %w", err)
		}
		origins = append(origins, n)
	}
	cfg.AllowedOrigins = origins
	if cfg.FunctionTimeout <= 0 {
		cfg.FunctionTimeout = DefaultFunctionTimeout
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.MaxDuration <= 0 {
		cfg.MaxDuration = DefaultMaxDuration
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Gateway{cfg: cfg, log: cfg.Logger, conns: map[string]*conn{}}, nil
}

// Stage returns the stage name.
func (g *Gateway) Stage() string { return g.cfg.Stage }

// ConnectionIDs returns the ids of the open connections.
func (g *Gateway) ConnectionIDs() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	ids := make([]string, 0, len(g.conns))
	for id := range g.conns {
		ids = append(ids, id)
	}
	return ids
}

// ServeHTTP implements http.Handler.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.EscapedPath()
	stagePath := "/" + g.cfg.Stage
	switch {
	case path == stagePath || path == stagePath+"/":
		g.serveWebSocket(w, r)
	case strings.HasPrefix(path, stagePath+"/@connections/"):
		if g.crossOrigin(w, r, writeManagementForbidden) {
			return
		}
		g.serveManagement(w, r)
	case strings.HasPrefix(path, invokePrefix):
		if g.crossOrigin(w, r, writeInvokeForbidden) {
			return
		}
		g.serveInvoke(w, r)
	case isUpgrade(r) || strings.Contains(path, "/@connections"):
		// A handshake or management call for another stage: what
		// execute-api answers for a stage or path it does not have.
		writeManagementForbidden(w)
	case g.cfg.NotFound != nil:
		g.cfg.NotFound.ServeHTTP(w, r)
	default:
		UnknownPath.ServeHTTP(w, r)
	}
}

// UnknownPath answers what execute-api answers for a path it has no route
// for: 403 MissingAuthenticationTokenException, {"message":"Missing
// Authentication Token"}. A Config.NotFound handler (wslocal's demo page)
// ends with it for the paths it does not serve either.
var UnknownPath http.Handler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
	mgmtapitest.WriteError(w, http.StatusForbidden, "MissingAuthenticationTokenException", "Missing Authentication Token")
})

// Shutdown closes every connection with 1001 (going away), waits until each
// one's $disconnect has run and refuses new connections. It returns early
// with ctx's error when ctx ends first.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.mu.Lock()
	g.closing = true
	conns := make([]*conn, 0, len(g.conns))
	for _, c := range g.conns {
		conns = append(conns, c)
	}
	g.mu.Unlock()
	for _, c := range conns {
		c.close(websocket.StatusGoingAway, "Going away")
	}
	done := make(chan struct{})
	go func() { g.sessions.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("localgw shutdown: %d connections still open: %w", len(g.ConnectionIDs()), ctx.Err())
	}
	// Accepted Event invocations run to their end, as Lambda's queue would
	// run them, before the functions (bootstraps) go away.
	asyncDone := make(chan struct{})
	go func() { g.async.Wait(); close(asyncDone) }()
	select {
	case <-asyncDone:
		return nil
	case <-ctx.Done():
		g.log.Error("shutdown cut asynchronous invocations short", "error", ctx.Err())
		return fmt.Errorf("localgw shutdown: asynchronous invocations still running: %w", ctx.Err())
	}
}

func (g *Gateway) lookup(id string) *conn {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.conns[id]
}

func (g *Gateway) methodArn(routeKey string) string {
	return fmt.Sprintf("arn:aws:execute-api:%s:%s:%s/%s/%s", g.cfg.Region, g.cfg.AccountID, g.cfg.APIID, g.cfg.Stage, routeKey)
}

// requestContext builds the requestContext API Gateway sends for one event.
func (g *Gateway) requestContext(c *conn, routeKey, eventType string, at time.Time) events.APIGatewayWebsocketProxyRequestContext {
	reqID := newID()
	rc := events.APIGatewayWebsocketProxyRequestContext{
		RouteKey:          routeKey,
		EventType:         eventType,
		ExtendedRequestID: reqID,
		RequestTime:       at.UTC().Format(requestTimeLayout),
		MessageDirection:  "IN",
		Stage:             g.cfg.Stage,
		ConnectedAt:       c.connectedAt.UnixMilli(),
		RequestTimeEpoch:  at.UnixMilli(),
		Identity:          events.APIGatewayRequestIdentity{SourceIP: c.sourceIP, UserAgent: c.userAgent},
		RequestID:         reqID,
		DomainName:        c.domainName,
		ConnectionID:      c.id,
		APIID:             g.cfg.APIID,
	}
	if c.authorizer != nil {
		// Assigned only when set: a typed nil map would be sent as "authorizer": null.
		rc.Authorizer = c.authorizer
	}
	return rc
}

// invokeRoute runs fn with ev and decodes its proxy response. A function
// error or an undecodable result is returned as an error.
func (g *Gateway) invokeRoute(ctx context.Context, fn Function, ev events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
	var resp events.APIGatewayProxyResponse
	payload, err := json.Marshal(ev)
	if err != nil {
		return resp, fmt.Errorf("encode %s event for %s: %w", ev.RequestContext.RouteKey, ev.RequestContext.ConnectionID, err)
	}
	out, err := fn(ctx, payload)
	if err != nil {
		return resp, fmt.Errorf("invoke %s for %s: %w", ev.RequestContext.RouteKey, ev.RequestContext.ConnectionID, err)
	}
	if len(out) > 0 && string(out) != "null" {
		if err := json.Unmarshal(out, &resp); err != nil {
			return resp, fmt.Errorf("decode %s response for %s: %w", ev.RequestContext.RouteKey, ev.RequestContext.ConnectionID, err)
		}
	}
	return resp, nil
}

// writeHandshakeError answers a refused handshake the way API Gateway does.
func writeHandshakeError(w http.ResponseWriter, status int) {
	if status < 200 || status > 599 {
		// A proxy response without a valid statusCode is a malformed
		// integration response; so is a 1xx, which is no final status (Go
		// would send it as an interim response, then 200 or a bare 101).
		status = http.StatusBadGateway
	}
	msg := http.StatusText(status)
	if status == http.StatusInternalServerError {
		msg = "Internal server error"
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("x-amzn-RequestId", newUUID())
	w.Header().Set("x-amzn-ErrorType", strings.ReplaceAll(http.StatusText(status), " ", "")+"Exception")
	w.WriteHeader(status)
	body, _ := json.Marshal(map[string]string{"message": msg})
	_, _ = w.Write(body)
}

// badHandshake checks the parts of an opening handshake that RFC 6455
// section 4.2.1 requires: 0 when they hold, else the status to answer (426
// for a version other than 13, 400 for the rest).
func badHandshake(r *http.Request) int {
	if r.Header.Get("Sec-WebSocket-Version") != "13" {
		return http.StatusUpgradeRequired
	}
	key, err := base64.StdEncoding.DecodeString(r.Header.Get("Sec-WebSocket-Key"))
	if r.Method != http.MethodGet || err != nil || len(key) != 16 || !headerHasToken(r.Header, "Connection", "upgrade") {
		return http.StatusBadRequest
	}
	return 0
}

// headerHasToken reports whether a comma-separated header lists token.
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// isUpgrade reports whether r asks for a WebSocket handshake.
func isUpgrade(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

func (g *Gateway) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	if !isUpgrade(r) {
		writeHandshakeError(w, http.StatusUpgradeRequired)
		return
	}
	g.mu.Lock()
	if g.closing {
		g.mu.Unlock()
		writeHandshakeError(w, http.StatusServiceUnavailable)
		return
	}
	// A handshake in progress is a session too: Shutdown waits for it (and
	// its $disconnect when it completes during the shutdown).
	g.sessions.Add(1)
	g.mu.Unlock()
	handedToRun := false
	defer func() {
		if !handedToRun {
			g.sessions.Done()
		}
	}()
	now := g.cfg.Now()
	c := &conn{
		gw:          g,
		id:          newID(),
		connectedAt: now,
		lastActive:  now,
		sourceIP:    remoteIP(r),
		userAgent:   r.UserAgent(),
		domainName:  r.Host,

		inboundBytes: semaphore.NewWeighted(int64(g.cfg.MaxQueuedBytes)),
	}
	headers, multiHeaders := requestHeaders(r, c.sourceIP, now)
	query, multiQuery := queryParameters(r)
	rc := g.requestContext(c, RouteConnect, "CONNECT", now)
	log := g.log.With("connectionId", c.id)
	// A client hanging up does not cancel the authorizer or $connect: like
	// Lambda, an invocation runs to completion (bounded by its timeout).
	ctx, cancel := g.invocationContext(r.Context())
	defer cancel()

	// A malformed handshake is refused before anything runs, as API
	// Gateway's front end does: no authorizer, no $connect, no $disconnect.
	if status := badHandshake(r); status != 0 {
		log.Info("handshake refused: malformed WebSocket handshake", "status", status)
		if status == http.StatusUpgradeRequired {
			w.Header().Set("Sec-WebSocket-Version", "13")
		}
		writeHandshakeError(w, status)
		return
	}

	if g.cfg.Authorizer != nil {
		if src := missingIdentitySource(r, g.cfg.IdentitySources); src != "" {
			log.Info("handshake refused: identity source missing", "identitySource", src)
			writeHandshakeError(w, http.StatusUnauthorized)
			return
		}
		methodArn := g.methodArn(RouteConnect)
		authHeaders, authMulti := authorizerHeaders(headers, multiHeaders)
		areq := auth.Request{
			Type: "REQUEST", MethodArn: methodArn,
			Headers: authHeaders, MultiValueHeaders: authMulti,
			QueryStringParameters: query, MultiValueQueryStringParameters: multiQuery,
			StageVariables: map[string]string{},
			RequestContext: rc,
		}
		status, authCtx := g.authorize(ctx, areq)
		if status != http.StatusOK {
			log.Info("handshake refused by authorizer", "status", status)
			writeHandshakeError(w, status)
			return
		}
		c.authorizer = authCtx
		rc.Authorizer = authCtx
	}

	ev := events.APIGatewayWebsocketProxyRequest{
		Headers: headers, MultiValueHeaders: multiHeaders,
		QueryStringParameters: query, MultiValueQueryStringParameters: multiQuery,
		RequestContext: rc,
	}
	resp, err := g.invokeRoute(ctx, g.cfg.WebSocket, ev)
	if err != nil {
		log.Error("$connect failed", "error", err)
		writeHandshakeError(w, http.StatusInternalServerError)
		return
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		log.Info("handshake refused by $connect", "status", resp.StatusCode)
		writeHandshakeError(w, resp.StatusCode)
		return
	}

	opts := &websocket.AcceptOptions{InsecureSkipVerify: true, CompressionMode: websocket.CompressionDisabled}
	// Like API Gateway, a subprotocol is selected only when $connect returns one.
	if p := responseHeader(resp, "Sec-WebSocket-Protocol"); p != "" {
		opts.Subprotocols = []string{p}
	}
	ws, err := websocket.Accept(frameLimitWriter{ResponseWriter: w, max: int64(g.cfg.FrameSize), maxMessage: int64(g.cfg.MaxMessageSize)}, r, opts)
	if err != nil {
		log.Info("websocket handshake failed", "error", err)
		g.disconnectEvent(c, int(websocket.StatusAbnormalClosure), "Handshake failed")
		return
	}
	ws.SetReadLimit(int64(g.cfg.MaxMessageSize))
	c.ws = ws
	c.ctx, c.cancel = context.WithCancel(context.Background())

	g.mu.Lock()
	if g.closing {
		g.mu.Unlock()
		c.cancel()
		_ = ws.Close(websocket.StatusGoingAway, "Going away")
		g.disconnectEvent(c, int(websocket.StatusGoingAway), "Going away")
		return
	}
	g.conns[c.id] = c
	g.mu.Unlock()
	log.Info("connected", "sourceIp", c.sourceIP)
	handedToRun = true // run ends the session after $disconnect
	c.run()
}

// authorize runs the REQUEST authorizer and maps its answer the way API
// Gateway does. It returns 200 and the context (with principalId) on Allow.
func (g *Gateway) authorize(ctx context.Context, req auth.Request) (int, map[string]any) {
	payload, err := json.Marshal(req)
	if err != nil {
		return http.StatusInternalServerError, nil
	}
	out, err := g.cfg.Authorizer(ctx, payload)
	var resp events.APIGatewayCustomAuthorizerResponse
	var ferr *FunctionError
	switch {
	case errors.As(err, &ferr):
		// API Gateway only sees the message of a function error.
		err = errors.New(ferr.Message)
	case err != nil:
		g.log.Error("authorizer failed", "connectionId", req.RequestContext.ConnectionID, "error", err)
		return http.StatusInternalServerError, nil
	default:
		var answer authorizerOutput
		if uerr := json.Unmarshal(out, &answer); uerr != nil {
			g.log.Error("authorizer answer undecodable", "connectionId", req.RequestContext.ConnectionID, "error", uerr)
			return http.StatusInternalServerError, nil
		}
		resp = answer.response()
	}
	status := auth.HTTPStatus(resp, err, req.MethodArn)
	if status != http.StatusOK {
		return status, nil
	}
	authCtx := make(map[string]any, len(resp.Context)+1)
	for k, v := range resp.Context {
		switch v.(type) {
		case map[string]any, []any:
			// API Gateway accepts strings, numbers and booleans only; an
			// object or array fails the request with a configuration error.
			g.log.Error("authorizer context value is not a string, number or boolean", "connectionId", req.RequestContext.ConnectionID, "key", k)
			return http.StatusInternalServerError, nil
		}
		authCtx[k] = v
	}
	exactNumbers(out, authCtx)
	authCtx["principalId"] = resp.PrincipalID
	return status, authCtx
}

// invocationContext is the context of one invocation made for a caller
// whose request has ctx: not cancelled when the caller hangs up (Lambda runs
// an invocation to completion) but bounded by FunctionTimeout.
func (g *Gateway) invocationContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), g.cfg.FunctionTimeout)
}

// disconnectEvent runs $disconnect; API Gateway treats it as best effort.
// Its headers are the ones API Gateway's $disconnect events carry.
func (g *Gateway) disconnectEvent(c *conn, code int, reason string) {
	ctx, cancel := g.invocationContext(context.Background())
	defer cancel()
	rc := g.requestContext(c, RouteDisconnect, "DISCONNECT", g.cfg.Now())
	rc.DisconnectStatusCode = int64(code)
	rc.DisconnectReason = &reason
	ev := events.APIGatewayWebsocketProxyRequest{
		RequestContext:    rc,
		Headers:           map[string]string{"Host": c.domainName, "x-api-key": "", "X-Forwarded-For": "", "x-restapi": ""},
		MultiValueHeaders: map[string][]string{"Host": {c.domainName}, "x-api-key": {""}, "X-Forwarded-For": {""}, "x-restapi": {""}},
	}
	if _, err := g.invokeRoute(ctx, g.cfg.WebSocket, ev); err != nil {
		g.log.Error("$disconnect failed", "connectionId", c.id, "error", err)
	}
}

func responseHeader(resp events.APIGatewayProxyResponse, name string) string {
	for k, v := range resp.Headers {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	for k, vs := range resp.MultiValueHeaders {
		if strings.EqualFold(k, name) && len(vs) > 0 {
			return vs[0]
		}
	}
	return ""
}

func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// authorizerHeaders are the $connect headers with the three API Gateway's
// REQUEST authorizer input has on top (AWS's example of a WebSocket
// authorizer's input): Connection and Upgrade, which $connect does not get,
// and content-length 0.
func authorizerHeaders(single map[string]string, multi map[string][]string) (map[string]string, map[string][]string) {
	s := make(map[string]string, len(single)+3)
	m := make(map[string][]string, len(multi)+3)
	for k, v := range single {
		s[k] = v
	}
	for k, v := range multi {
		m[k] = v
	}
	for k, v := range map[string]string{"Connection": "upgrade", "Upgrade": "websocket", "content-length": "0"} {
		s[k], m[k] = v, []string{v}
	}
	return s, m
}

// hopByHop are the headers API Gateway does not pass to $connect.
var hopByHop = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true, "Te": true,
	"Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
}

// awsHeaderNames are header names API Gateway spells differently from Go's
// canonical form (Sec-Websocket-Key).
var awsHeaderNames = map[string]string{
	"Sec-Websocket-Key":        "Sec-WebSocket-Key",
	"Sec-Websocket-Version":    "Sec-WebSocket-Version",
	"Sec-Websocket-Extensions": "Sec-WebSocket-Extensions",
	"Sec-Websocket-Protocol":   "Sec-WebSocket-Protocol",
}

// requestHeaders returns the $connect headers: the client's without the
// hop-by-hop ones, plus the ones API Gateway's front end adds (Host,
// X-Forwarded-*, X-Amzn-Trace-Id).
func requestHeaders(r *http.Request, sourceIP string, now time.Time) (map[string]string, map[string][]string) {
	multi := make(map[string][]string, len(r.Header)+5)
	for k, vs := range r.Header {
		if hopByHop[k] {
			continue
		}
		if aws, ok := awsHeaderNames[k]; ok {
			k = aws
		}
		multi[k] = append([]string(nil), vs...)
	}
	port := "80"
	if _, p, err := net.SplitHostPort(r.Host); err == nil {
		port = p
	}
	multi["Host"] = []string{r.Host}
	multi["X-Forwarded-For"] = []string{sourceIP}
	multi["X-Forwarded-Port"] = []string{port}
	multi["X-Forwarded-Proto"] = []string{"http"}
	multi["X-Amzn-Trace-Id"] = []string{newTraceID(now.Unix())}
	single := make(map[string]string, len(multi))
	for k, vs := range multi {
		single[k] = strings.Join(vs, ",")
	}
	return single, multi
}

// queryParameters returns the query string, or nils when there is none (API
// Gateway then leaves the fields out).
func queryParameters(r *http.Request) (map[string]string, map[string][]string) {
	q := r.URL.Query()
	if len(q) == 0 {
		return nil, nil
	}
	single := make(map[string]string, len(q))
	multi := make(map[string][]string, len(q))
	for k, vs := range q {
		multi[k] = vs
		if len(vs) > 0 {
			single[k] = vs[len(vs)-1]
		}
	}
	return single, multi
}

// Identity source prefixes API Gateway accepts for a WebSocket REQUEST authorizer
// (stageVariables.* and context.* have no meaning locally).
const (
	identityQuery  = "route.request.querystring."
	identityHeader = "route.request.header."
)

// parseIdentitySource splits an identity source into its prefix and name.
func parseIdentitySource(src string) (prefix, name string, err error) {
	for _, p := range []string{identityQuery, identityHeader} {
		if n, ok := strings.CutPrefix(src, p); ok && n != "" {
			return p, n, nil
		}
	}
	return "", "", fmt.Errorf("identity source %q: want %sNAME or %sNAME", src, identityQuery, identityHeader)
}

// missingIdentitySource returns the first identity source that r lacks or
// has empty, or "" when all are there.
func missingIdentitySource(r *http.Request, sources []string) string {
	if len(sources) == 0 {
		return ""
	}
	query := r.URL.Query()
	for _, src := range sources {
		prefix, name, _ := parseIdentitySource(src) // validated by New
		var values []string
		if prefix == identityQuery {
			values = query[name]
		} else {
			values = r.Header.Values(name)
		}
		if len(values) == 0 || values[len(values)-1] == "" {
			return src
		}
	}
	return ""
}
