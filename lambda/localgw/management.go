package localgw

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/coder/websocket"

	"github.com/wsforge/terraform-aws-websocket/lambda/mgmtapitest"
	"github.com/wsforge/terraform-aws-websocket/lambda/sender"
)

// managementTimeLayout is how the management API writes timestamps.
const managementTimeLayout = "2006-01-02T15:04:05.000Z"

// serveManagement answers POST, GET and DELETE /{stage}/@connections/{id}
// exactly as API Gateway's management API does.
func (g *Gateway) serveManagement(w http.ResponseWriter, r *http.Request) {
	id, ok := mgmtapitest.ConnectionID(g.cfg.Stage, r.URL.EscapedPath())
	if !ok {
		mgmtapitest.WriteError(w, http.StatusForbidden, "MissingAuthenticationTokenException", "Missing Authentication Token")
		return
	}
	switch r.Method {
	case http.MethodPost:
		body, err := io.ReadAll(io.LimitReader(r.Body, sender.MaxPayload+1))
		if err != nil {
			mgmtapitest.WriteError(w, http.StatusBadRequest, "BadRequestException", "Could not read the request body")
			return
		}
		if len(body) > sender.MaxPayload {
			mgmtapitest.WriteError(w, http.StatusRequestEntityTooLarge, sender.ErrorTypePayloadTooLarge, fmt.Sprintf("Request entity too large: %d bytes exceeds %d", len(body), sender.MaxPayload))
			return
		}
		c := g.lookup(id)
		if c == nil {
			mgmtapitest.WriteError(w, http.StatusGone, sender.ErrorTypeGone, "")
			return
		}
		if err := c.send(r.Context(), body); err != nil {
			if errors.Is(err, errBufferFull) {
				mgmtapitest.WriteError(w, http.StatusTooManyRequests, sender.ErrorTypeLimitExceeded, "Rate exceeded")
				return
			}
			if errors.Is(err, errSlowClient) {
				g.log.Info("client too slow: closed", "connectionId", id, "error", err)
			}
			// A write that fails because the client went away (reset, broken
			// pipe) can come before the reader notices: that is a gone
			// connection too, not a server error. So is a client the gateway
			// dropped because it did not keep up.
			if errors.Is(err, errClosed) || errors.Is(err, errSlowClient) || c.closing() || connectionGone(err) {
				mgmtapitest.WriteError(w, http.StatusGone, sender.ErrorTypeGone, "")
				return
			}
			g.log.Error("management post failed", "connectionId", id, "error", err)
			mgmtapitest.WriteError(w, http.StatusInternalServerError, "InternalServerErrorException", "Internal server error")
			return
		}
		w.Header().Set("x-amzn-RequestId", newUUID())
		w.WriteHeader(http.StatusOK)
	case http.MethodGet:
		// A connection being closed (DELETE, a slow client, a timeout) is
		// gone for every method, as for POST, while its close handshake ends.
		c := g.lookup(id)
		if c == nil || c.closing() {
			mgmtapitest.WriteError(w, http.StatusGone, sender.ErrorTypeGone, "")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("x-amzn-RequestId", newUUID())
		_ = json.NewEncoder(w).Encode(map[string]any{
			"connectedAt":  c.connectedAt.UTC().Format(managementTimeLayout),
			"identity":     map[string]string{"sourceIp": c.sourceIP, "userAgent": c.userAgent},
			"lastActiveAt": c.lastActiveAt().UTC().Format(managementTimeLayout),
		})
	case http.MethodDelete:
		c := g.lookup(id)
		if c == nil || c.closing() {
			mgmtapitest.WriteError(w, http.StatusGone, sender.ErrorTypeGone, "")
			return
		}
		c.close(websocket.StatusNormalClosure, "Connection closed by the management API")
		w.Header().Set("x-amzn-RequestId", newUUID())
		w.WriteHeader(http.StatusNoContent)
	default:
		mgmtapitest.WriteError(w, http.StatusForbidden, "MissingAuthenticationTokenException", "Missing Authentication Token")
	}
}

// invokePrefix is the path of the Lambda Invoke API.
const invokePrefix = "/2015-03-31/functions/"

// MaxInvokePayload is Lambda's limit for a synchronous invocation's request (6 MB).
const MaxInvokePayload = 6 * 1024 * 1024

// MaxEventPayload is Lambda's limit for an asynchronous (Event) invocation's
// request (1 MB).
const MaxEventPayload = 1024 * 1024

// MaxResponsePayload is Lambda's limit for a synchronous invocation's
// response: 6,291,556 bytes, the figure its ResponseSizeTooLarge error names
// (100 bytes above 6 MB).
const MaxResponsePayload = 6291556

// serveInvoke answers POST /2015-03-31/functions/{name}/invocations like Lambda.
func (g *Gateway) serveInvoke(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.EscapedPath(), invokePrefix)
	escaped, ok := strings.CutSuffix(rest, "/invocations")
	if !ok || r.Method != http.MethodPost {
		writeLambdaError(w, http.StatusNotFound, "UnknownOperationException", "Unknown operation")
		return
	}
	name, err := url.PathUnescape(escaped)
	if err != nil || name == "" {
		writeLambdaError(w, http.StatusBadRequest, "InvalidParameterValueException", "invalid function name")
		return
	}
	invocationType, logType := r.Header.Get("X-Amz-Invocation-Type"), r.Header.Get("X-Amz-Log-Type")
	switch {
	case invocationType != "" && invocationType != "RequestResponse" && invocationType != "Event" && invocationType != "DryRun":
		writeValidationError(w, invocationType, "invocationType", "[DryRun, RequestResponse, Event]")
		return
	case logType != "" && logType != "None" && logType != "Tail":
		writeValidationError(w, logType, "logType", "[None, Tail]")
		return
	}
	name = functionName(name)
	fn := g.cfg.Functions[name]
	if fn == nil && g.cfg.ResolveFunction != nil {
		fn = g.cfg.ResolveFunction(name)
	}
	if fn == nil {
		writeLambdaError(w, http.StatusNotFound, "ResourceNotFoundException",
			fmt.Sprintf("Function not found: arn:aws:lambda:%s:%s:function:%s", g.cfg.Region, g.cfg.AccountID, name))
		return
	}
	payload, err := io.ReadAll(io.LimitReader(r.Body, MaxInvokePayload+1))
	if err != nil {
		writeLambdaError(w, http.StatusBadRequest, "InvalidRequestContentException", "Could not read the request body")
		return
	}
	switch {
	case len(payload) > MaxInvokePayload:
		writeLambdaError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLargeException",
			fmt.Sprintf("Request must be smaller than %d bytes for the InvokeFunction operation", MaxInvokePayload))
		return
	case invocationType == "Event" && len(payload) > MaxEventPayload:
		writeLambdaError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLargeException",
			fmt.Sprintf("%d byte payload is too large for the Event invocation type (limit %d bytes)", len(payload), MaxEventPayload))
		return
	}
	if len(payload) == 0 {
		payload = []byte("{}")
	}
	if !json.Valid(payload) {
		writeLambdaError(w, http.StatusBadRequest, "InvalidRequestContentException", "Could not parse request body into json")
		return
	}
	requestID := newUUID()
	w.Header().Set("x-amzn-RequestId", requestID)
	switch invocationType {
	case "DryRun":
		w.WriteHeader(http.StatusNoContent)
		return
	case "Event":
		g.mu.Lock()
		closing := g.closing
		if !closing {
			g.async.Add(1) // Shutdown waits for it
		}
		g.mu.Unlock()
		if closing {
			writeLambdaError(w, http.StatusServiceUnavailable, "ServiceException", "The local gateway is shutting down: the invocation was not accepted")
			return
		}
		go func() {
			defer g.async.Done()
			ctx, cancel := g.invocationContext(withRequestID(context.Background(), requestID))
			defer cancel()
			if _, err := fn(ctx, payload); err != nil {
				g.log.Error("asynchronous invoke failed", "function", name, "error", err)
			}
		}()
		w.WriteHeader(http.StatusAccepted)
		return
	}
	// The caller hanging up does not cancel the invocation, as on Lambda.
	ctx, cancel := g.invocationContext(withRequestID(r.Context(), requestID))
	defer cancel()
	start := time.Now()
	out, err := fn(ctx, payload)
	if logType == "Tail" {
		// The lines Lambda itself writes around an invocation (the local
		// gateway does not keep the function's own output per invocation).
		ms := float64(time.Since(start).Microseconds()) / 1000
		tail := fmt.Sprintf("START RequestId: %[1]s Version: $LATEST\nEND RequestId: %[1]s\nREPORT RequestId: %[1]s\tDuration: %.2[2]f ms\tBilled Duration: %[3]d ms\t\n",
			requestID, ms, int64(math.Ceil(ms)))
		w.Header().Set("X-Amz-Log-Result", base64.StdEncoding.EncodeToString([]byte(tail)))
	}
	var ferr *FunctionError
	switch {
	case errors.As(err, &ferr):
		out, _ = json.Marshal(ferr)
		w.Header().Set("X-Amz-Function-Error", "Unhandled")
	case err != nil:
		g.log.Error("invoke failed", "function", name, "error", err)
		writeLambdaError(w, http.StatusBadGateway, "ServiceException", "The function could not be run: "+err.Error())
		return
	case len(out) > MaxResponsePayload:
		out, _ = json.Marshal(FunctionError{Type: "Function.ResponseSizeTooLarge", Message: fmt.Sprintf("Response payload size exceeded maximum allowed payload size (%d bytes).", MaxResponsePayload)})
		w.Header().Set("X-Amz-Function-Error", "Unhandled")
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amz-Executed-Version", "$LATEST")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}

// functionName reduces the forms Lambda accepts (name, name:qualifier,
// partial ARN, full ARN) to the function's name.
func functionName(s string) string {
	parts := strings.Split(s, ":")
	for i, p := range parts {
		if p == "function" && i+1 < len(parts) {
			return parts[i+1]
		}
	}
	return parts[0]
}

// writeLambdaError writes an error the way the Lambda API does.
func writeLambdaError(w http.ResponseWriter, status int, errorType, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("x-amzn-ErrorType", errorType)
	w.Header().Set("x-amzn-RequestId", newUUID())
	w.WriteHeader(status)
	// The member is spelled as Lambda's model spells it for the type.
	field := "message"
	if errorType == "ResourceNotFoundException" || errorType == "ServiceException" {
		field = "Message"
	}
	body, _ := json.Marshal(map[string]string{"Type": "User", field: message})
	_, _ = w.Write(body)
}

// writeValidationError writes the 400 ValidationException Lambda answers for a
// parameter outside its enum, in its words.
func writeValidationError(w http.ResponseWriter, value, field, allowed string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("x-amzn-ErrorType", "ValidationException")
	w.Header().Set("x-amzn-RequestId", newUUID())
	w.WriteHeader(http.StatusBadRequest)
	body, _ := json.Marshal(map[string]string{"message": fmt.Sprintf("1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: Member must satisfy enum value set: %s", value, field, allowed)})
	_, _ = w.Write(body)
}

// connectionGone reports whether err means the client's side of the
// connection is gone: reset, broken pipe, closed socket or end of stream.
func connectionGone(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrClosedPipe) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// withRequestID gives an invocation the request id its Invoke API answer
// carries (x-amzn-RequestId): a bootstrap gets it as
// Lambda-Runtime-Aws-Request-Id and an in-process handler in its
// lambdacontext, as on Lambda, where the three are one id.
func withRequestID(ctx context.Context, id string) context.Context {
	return lambdacontext.NewContext(ctx, &lambdacontext.LambdaContext{AwsRequestID: id})
}
