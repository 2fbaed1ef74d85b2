// Command deployer is the module's redeploy Lambda: Terraform invokes it
// (aws_lambda_invocation) after the routes, route responses, integrations or
// authorizer change, and it makes a new deployment of the API and moves the
// stage onto it (package deploy). Environment: WS_API_ID, WS_STAGE_NAME,
// WS_LOG_LEVEL; AWS_REGION and the credentials come from Lambda.
//
// Build it as a provided.al2023 bootstrap:
//
//	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build -tags lambda.norpc -o bootstrap ./lambda/cmd/deployer
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/wsforge/terraform-aws-websocket/lambda/deploy"
	"github.com/wsforge/terraform-aws-websocket/lambda/lambdaenv"
)

func main() {
	var level slog.Level
	if v := os.Getenv("WS_LOG_LEVEL"); v != "" {
		if err := level.UnmarshalText([]byte(v)); err != nil {
			fmt.Fprintln(os.Stderr, "deployer: WS_LOG_LEVEL:", err)
			os.Exit(1)
		}
	}
	log := lambdaenv.Logger(level)
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "deployer: load aws config:", err)
		os.Exit(1)
	}
	h := &deploy.Handler{
		Client: &deploy.Client{
			Endpoint:    deploy.Endpoint(cfg.Region),
			Region:      cfg.Region,
			Credentials: cfg.Credentials,
			Logger:      log,
		},
		APIID:  os.Getenv("WS_API_ID"),
		Stage:  os.Getenv("WS_STAGE_NAME"),
		Logger: log,
	}
	lambda.Start(h.Handle)
}
