package auth

import "github.com/wsforge/terraform-aws-websocket/lambda/metrics"

// SetMetrics makes the authorizer count its decisions in r:
// AuthorizerAllowed, and AuthorizerDenied by Reason (no_token, invalid_token,
// error). nil records nothing. Call it before the first Handle.
func (a *Authorizer) SetMetrics(r metrics.Recorder) { a.metrics = metrics.Or(r) }
