// Command authorizer is the built-in JWT REQUEST authorizer Lambda of the
// WebSocket API's $connect route. Configuration comes from the WS_JWT_*
// environment variables (see package auth), WS_LOG_LEVEL and WS_METRICS_NAMESPACE; a key kept in SSM
// or Secrets Manager is fetched once, at cold start, and a key set at
// WS_JWT_JWKS_URL at cold start and then again only when a token names an
// unknown kid (at most once a minute) or the set is an hour old.
//
// Build it as a provided.al2023 bootstrap:
//
//	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build -tags lambda.norpc -o bootstrap ./lambda/cmd/authorizer
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/wsforge/terraform-aws-websocket/lambda/auth"
	"github.com/wsforge/terraform-aws-websocket/lambda/metrics"
)

func main() {
	logger := slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: logLevel(os.Getenv("WS_LOG_LEVEL"))}))
	a, err := newAuthorizer(context.Background(), logger)
	if err != nil {
		logger.Error("start authorizer", "error", err)
		os.Exit(1)
	}
	rec := metrics.NewEMF(os.Stdout, metrics.NamespaceFromEnv(os.Getenv), metrics.FunctionAuthorizer)
	a.SetMetrics(rec)
	lambda.Start(metrics.Wrap(rec, a.Handle))
}

func newAuthorizer(ctx context.Context, logger *slog.Logger) (*auth.Authorizer, error) {
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("load AWS config: %w", err)
	}
	cfg, err := auth.ConfigFromEnv(ctx, os.Getenv, auth.EnvClients{
		SSM:            ssm.NewFromConfig(awsCfg),
		SecretsManager: secretsmanager.NewFromConfig(awsCfg),
		Logger:         logger,
	})
	if err != nil {
		return nil, err
	}
	v, err := auth.NewVerifier(cfg)
	if err != nil {
		return nil, err
	}
	return auth.NewAuthorizer(v, logger)
}

func logLevel(s string) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.TrimSpace(s))); err != nil {
		return slog.LevelInfo
	}
	return l
}
