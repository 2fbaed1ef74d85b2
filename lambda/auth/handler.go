package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wsforge/terraform-aws-websocket/lambda/metrics"
)

// Context keys the authorizer sets; API Gateway passes them to every route of
// the connection in requestContext.authorizer.
const (
	// ContextUserID holds the verified user id.
	ContextUserID = "userId"
	// ContextChannels holds comma-separated glob patterns of private channels.
	ContextChannels = "channels"
)

const (
	// policyVersion is the only IAM policy language version.
	policyVersion = "2012-10-17"
	// invokeAction is what a WebSocket API authorizer policy allows or denies.
	invokeAction = "execute-api:Invoke"
	// deniedPrincipal names the caller in a Deny policy, where no user is known.
	deniedPrincipal = "anonymous"
)

// ErrUnauthorized is the error [Authorizer.Handle] returns when the request
// carries no token. API Gateway recognises the message "Unauthorized" and
// answers 401; any other error message would become a 500.
var ErrUnauthorized = errors.New("Unauthorized") //nolint:staticcheck // API Gateway matches this exact message.

// Request is the event API Gateway sends to the REQUEST authorizer of a
// WebSocket API on $connect. It is events.APIGatewayCustomAuthorizerRequestTypeRequest
// with the WebSocket request context (routeKey, eventType, connectionId...),
// which that type lacks; testdata/apigw-websocket-request-authorizer-connect.json
// is an example.
type Request struct {
	// Type is "REQUEST".
	Type string `json:"type"`
	// MethodArn is arn:aws:execute-api:region:account:apiId/stage/$connect.
	MethodArn string `json:"methodArn"`
	// The handshake's headers and query string, single- and multi-valued,
	// and the stage's variables.
	Headers                         map[string]string   `json:"headers"`
	MultiValueHeaders               map[string][]string `json:"multiValueHeaders"`
	QueryStringParameters           map[string]string   `json:"queryStringParameters"`
	MultiValueQueryStringParameters map[string][]string `json:"multiValueQueryStringParameters"`
	StageVariables                  map[string]string   `json:"stageVariables"`
	// RequestContext describes the connection being opened.
	RequestContext events.APIGatewayWebsocketProxyRequestContext `json:"requestContext"`
}

// Authorizer is the Lambda handler of the built-in JWT authorizer.
type Authorizer struct {
	verifier *Verifier
	logger   *slog.Logger
	metrics  metrics.Recorder
}

// NewAuthorizer returns an Authorizer that verifies tokens with v and logs
// one line per decision to logger.
func NewAuthorizer(v *Verifier, logger *slog.Logger) (*Authorizer, error) {
	if v == nil {
		return nil, errors.New("new authorizer: nil verifier")
	}
	if logger == nil {
		return nil, errors.New("new authorizer: nil logger")
	}
	return &Authorizer{verifier: v, logger: logger, metrics: metrics.Nop{}}, nil
}

// Handle answers one authorizer request: an Allow policy on the method ARN
// with the userId and channels context for a valid token, a Deny policy for
// an invalid one, and ErrUnauthorized when there is no token (see the package
// documentation for the resulting status codes).
func (a *Authorizer) Handle(ctx context.Context, req Request) (events.APIGatewayCustomAuthorizerResponse, error) {
	rc := req.RequestContext
	log := a.logger.With("connectionId", rc.ConnectionID, "routeKey", rc.RouteKey, "requestId", rc.RequestID)
	if req.MethodArn == "" {
		err := fmt.Errorf("authorize connection %s: event has no methodArn", rc.ConnectionID)
		log.ErrorContext(ctx, "authorize", "error", err)
		return events.APIGatewayCustomAuthorizerResponse{}, err
	}

	id, err := a.verifier.VerifyRequest(ctx,
		withMultiValues(req.Headers, req.MultiValueHeaders),
		withMultiValues(req.QueryStringParameters, req.MultiValueQueryStringParameters))
	switch {
	case errors.Is(err, ErrNoToken):
		log.InfoContext(ctx, "authorize", "decision", "unauthorized", "status", http.StatusUnauthorized, "reason", err.Error())
		a.metrics.AddReason(metrics.AuthorizerDenied, metrics.ReasonNoToken, 1)
		return events.APIGatewayCustomAuthorizerResponse{}, ErrUnauthorized
	case errors.Is(err, ErrInvalidToken):
		log.InfoContext(ctx, "authorize", "decision", "deny", "status", http.StatusForbidden, "reason", err.Error())
		a.metrics.AddReason(metrics.AuthorizerDenied, metrics.ReasonInvalidToken, 1)
		return policyResponse(deniedPrincipal, "Deny", req.MethodArn, nil), nil
	case err != nil:
		err = fmt.Errorf("authorize connection %s: %w", rc.ConnectionID, err)
		log.ErrorContext(ctx, "authorize", "error", err)
		a.metrics.AddReason(metrics.AuthorizerDenied, metrics.ReasonError, 1)
		return events.APIGatewayCustomAuthorizerResponse{}, err
	}
	log.InfoContext(ctx, "authorize", "decision", "allow", "userId", id.UserID)
	a.metrics.Add(metrics.AuthorizerAllowed, 1)
	return policyResponse(id.UserID, "Allow", req.MethodArn, id.Context()), nil
}

// Context is the authorizer context for the identity: userId and channels.
func (id Identity) Context() map[string]any {
	return map[string]any{ContextUserID: id.UserID, ContextChannels: id.Channels}
}

func policyResponse(principal, effect, methodArn string, authContext map[string]any) events.APIGatewayCustomAuthorizerResponse {
	return events.APIGatewayCustomAuthorizerResponse{
		PrincipalID: principal,
		PolicyDocument: events.APIGatewayCustomAuthorizerPolicy{
			Version: policyVersion,
			Statement: []events.IAMPolicyStatement{{
				Action:   []string{invokeAction},
				Effect:   effect,
				Resource: []string{methodArn},
			}},
		},
		Context: authContext,
	}
}

// withMultiValues fills names missing from single with the first of their
// multi-value entries, so either half of an event is enough.
func withMultiValues(single map[string]string, multi map[string][]string) map[string]string {
	if len(multi) == 0 {
		return single
	}
	out := make(map[string]string, len(single)+len(multi))
	for k, vs := range multi {
		if len(vs) > 0 {
			out[k] = vs[0]
		}
	}
	for k, v := range single {
		out[k] = v
	}
	return out
}

// IsUnauthorized reports whether an authorizer's error is the one API Gateway
// answers with 401. Like API Gateway it compares the message, so it also
// matches an error rebuilt from a Lambda invoke's errorMessage.
func IsUnauthorized(err error) bool {
	return err != nil && err.Error() == ErrUnauthorized.Error()
}

// HTTPStatus is the status API Gateway gives a $connect request after a
// REQUEST authorizer answered resp and err for methodArn: 401 for the
// "Unauthorized" error, 500 for any other error, 200 when the policy allows
// execute-api:Invoke on methodArn and 403 otherwise.
func HTTPStatus(resp events.APIGatewayCustomAuthorizerResponse, err error, methodArn string) int {
	switch {
	case IsUnauthorized(err):
		return http.StatusUnauthorized
	case err != nil:
		return http.StatusInternalServerError
	case Allows(resp.PolicyDocument, methodArn):
		return http.StatusOK
	default:
		return http.StatusForbidden
	}
}

// Allows evaluates a policy the way IAM does for one execute-api:Invoke on
// methodArn: an explicit Deny wins, otherwise an Allow is needed. Actions match
// case-insensitively, resources case-sensitively; both take the IAM wildcards
// "*" (any run of characters) and "?" (one character).
func Allows(policy events.APIGatewayCustomAuthorizerPolicy, methodArn string) bool {
	allowed := false
	for _, st := range policy.Statement {
		if !anyMatch(st.Action, invokeAction, true) || !anyMatch(st.Resource, methodArn, false) {
			continue
		}
		switch {
		case strings.EqualFold(st.Effect, "Deny"):
			return false
		case strings.EqualFold(st.Effect, "Allow"):
			allowed = true
		}
	}
	return allowed
}

func anyMatch(patterns []string, s string, foldCase bool) bool {
	for _, p := range patterns {
		if foldCase {
			p, s = strings.ToLower(p), strings.ToLower(s)
		}
		if wildcardMatch(p, s) {
			return true
		}
	}
	return false
}

// wildcardMatch matches s against an IAM pattern with "*" and "?", in linear
// time with the usual single-backtrack algorithm. Wildcards are special in
// the pattern only: a "*" or "?" in s is an ordinary character, so the
// pattern's "*" is tried before a literal comparison (a stage or route named
// with a "*" must not let a Deny's "*" match only itself).
func wildcardMatch(pattern, s string) bool {
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}
