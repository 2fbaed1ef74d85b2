package auth

import (
	"bytes"
	"context"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"

	"github.com/wsforge/terraform-aws-websocket/lambda/metrics"
	"github.com/wsforge/terraform-aws-websocket/lambda/metrics/metricstest"
)

func TestAuthorizerMetrics(t *testing.T) {
	a := newTestAuthorizer(t, &bytes.Buffer{}, "")
	rec := metricstest.New()
	a.SetMetrics(rec)
	valid := signToken(t, jwt.SigningMethodHS256, []byte(testSecret), baseClaims(), nil)
	wrongKey := signToken(t, jwt.SigningMethodHS256, []byte("another-secret-of-at-least-32-bytes!"), baseClaims(), nil)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()

	tests := []struct {
		name  string
		ctx   context.Context
		token string
		count func() float64
	}{
		{"allowed", context.Background(), valid, func() float64 { return rec.Count(metrics.AuthorizerAllowed) }},
		{"no token", context.Background(), "", func() float64 { return rec.CountReason(metrics.AuthorizerDenied, metrics.ReasonNoToken) }},
		{"invalid token", context.Background(), wrongKey, func() float64 { return rec.CountReason(metrics.AuthorizerDenied, metrics.ReasonInvalidToken) }},
		{"authorizer error", cancelled, valid, func() float64 { return rec.CountReason(metrics.AuthorizerDenied, metrics.ReasonError) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := loadConnectEvent(t)
			delete(req.QueryStringParameters, "token")
			delete(req.Headers, "Authorization")
			delete(req.MultiValueHeaders, "Authorization")
			if tt.token != "" {
				req.QueryStringParameters["token"] = tt.token
			}
			before := tt.count()
			_, _ = a.Handle(tt.ctx, req)
			assert.Equal(t, before+1, tt.count())
		})
	}
	total := rec.Count(metrics.AuthorizerAllowed)
	for _, r := range metrics.DenyReasons {
		total += rec.CountReason(metrics.AuthorizerDenied, r)
	}
	assert.Equal(t, 4.0, total, "one decision counted per request")
}

func TestAuthorizerWithoutMetricsRecordsNothing(t *testing.T) {
	a := newTestAuthorizer(t, &bytes.Buffer{}, "")
	a.SetMetrics(nil)
	_, err := a.Handle(context.Background(), loadConnectEvent(t))
	assert.Error(t, err, "the fixture has no token")
}
