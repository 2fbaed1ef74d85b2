// Command echobootstrap is a tiny provided.al2023 function for the runtime
// API tests: it echoes, fails, sleeps or exits on command.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

type event struct {
	Mode           string `json:"mode"`
	Value          string `json:"value"`
	Body           string `json:"body"`
	RequestContext *struct {
		RouteKey string `json:"routeKey"`
	} `json:"requestContext"`
}

// routeResponse answers an API Gateway WebSocket event as a route integration.
type routeResponse struct {
	StatusCode int    `json:"statusCode"`
	Body       string `json:"body"`
}

type result struct {
	Value       string `json:"value"`
	PID         int    `json:"pid"`
	FunctionArn string `json:"functionArn"`
	RequestID   string `json:"requestId"`
	HasDeadline bool   `json:"hasDeadline"`
	Env         string `json:"env"`
	MemoryMB    int    `json:"memoryMB"`
	RemainingMs int64  `json:"remainingMs"` // until the invocation's deadline
}

type customError struct{ msg string }

func (e *customError) Error() string { return e.msg }

func handle(ctx context.Context, ev event) (any, error) {
	if ev.Mode == "size" {
		// A response of exactly value bytes: a JSON string.
		n, _ := strconv.Atoi(ev.Value)
		return json.RawMessage(`"` + strings.Repeat("x", max(0, n-2)) + `"`), nil
	}
	if ev.RequestContext != nil {
		var msg struct {
			Env string `json:"env"`
			// EMF: write an EMF line counting MessagesReceived = Count in
			// namespace EMF, as a route's own function may.
			EMF   string `json:"emf"`
			Count int    `json:"count"`
		}
		if json.Unmarshal([]byte(ev.Body), &msg) == nil && msg.EMF != "" {
			fmt.Printf(`{"_aws":{"Timestamp":%d,"CloudWatchMetrics":[{"Namespace":%q,"Dimensions":[["Function"]],"Metrics":[{"Name":"MessagesReceived","Unit":"Count"}]}]},"Function":"websocket","MessagesReceived":%d}`+"\n", time.Now().UnixMilli(), msg.EMF, msg.Count)
			return routeResponse{StatusCode: 200, Body: "emf " + msg.EMF}, nil
		}
		if json.Unmarshal([]byte(ev.Body), &msg) == nil && msg.Env != "" {
			// {"action":...,"env":"NAME"}: the route answers with NAME's value.
			return routeResponse{StatusCode: 200, Body: msg.Env + "=" + os.Getenv(msg.Env)}, nil
		}
		return routeResponse{StatusCode: 200, Body: "bootstrap " + ev.RequestContext.RouteKey + ": " + ev.Body}, nil
	}
	return echo(ctx, ev)
}

func echo(ctx context.Context, ev event) (result, error) {
	lc, _ := lambdacontext.FromContext(ctx)
	_, hasDeadline := ctx.Deadline()
	r := result{Value: ev.Value, PID: os.Getpid(), HasDeadline: hasDeadline, Env: os.Getenv("ECHO_ENV"), MemoryMB: lambdacontext.MemoryLimitInMB}
	if lc != nil {
		r.FunctionArn, r.RequestID = lc.InvokedFunctionArn, lc.AwsRequestID
	}
	if dl, ok := ctx.Deadline(); ok {
		r.RemainingMs = time.Until(dl).Milliseconds()
	}
	switch ev.Mode {
	case "error":
		return r, &customError{msg: "failed: " + ev.Value}
	case "plain-error":
		return r, errors.New("plain")
	case "exit":
		os.Exit(3)
	case "sleep":
		d, _ := time.ParseDuration(ev.Value)
		time.Sleep(d)
	case "panic":
		panic("boom")
	case "late-init-error":
		// An init error reported after init: the status Lambda answers.
		r.Value = strconv.Itoa(postInitError())
	}
	return r, nil
}

// postInitError reports a failed init to the Runtime API and returns the status.
func postInitError() int {
	url := "http://" + os.Getenv("AWS_LAMBDA_RUNTIME_API") + "/2018-06-01/runtime/init/error"
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"errorMessage":"no config","errorType":"ConfigError"}`))
	req.Header.Set("Lambda-Runtime-Function-Error-Type", "ConfigError")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func main() {
	if mode := os.Getenv("ECHO_INIT_FAIL"); mode != "" {
		postInitError()
		if mode == "hang" {
			// A runtime that reports its failed init and then does not exit.
			time.Sleep(time.Hour)
		}
		os.Exit(1)
	}
	if d, err := time.ParseDuration(os.Getenv("ECHO_INIT_SLEEP")); err == nil {
		time.Sleep(d) // a slow init
	}
	lambda.Start(handle)
}
