package terraform_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gruntwork-io/terratest/modules/terraform"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	userFunctionARN       = "arn:aws:lambda:us-east-1:123456789012:function:user-handler"
	userAuthorizerARN     = "arn:aws:lambda:us-east-1:123456789012:function:user-authorizer"
	jwtSecretARN          = "arn:aws:secretsmanager:us-east-1:123456789012:secret:ws-jwt-AbCdEf"
	keyARN                = "arn:aws:kms:us-east-1:123456789012:key/0b7e3a52-1111-2222-3333-444455556666"
	certificateARN        = "arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555"
	existingEventBusARN   = "arn:aws:events:us-east-1:123456789012:event-bus/shared"
	defaultIdentitySource = "route.request.querystring.token"
	cognitoJWKSURL        = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123/.well-known/jwks.json"
)

// TestPlanDefaults: the default configuration plans every promised resource
// with the settings the issue asks for.
func TestPlanDefaults(t *testing.T) {
	t.Parallel()
	plan := planModule(t, map[string]interface{}{"name": "wst-defaults"})

	api := planned(t, plan, "aws_apigatewayv2_api.this")
	assert.Equal(t, "WEBSOCKET", api["protocol_type"])
	assert.Equal(t, "$request.body.action", api["route_selection_expression"])

	for _, key := range []string{"$connect", "$disconnect", "$default"} {
		route := planned(t, plan, `aws_apigatewayv2_route.this["`+key+`"]`)
		assert.Equal(t, key, route["route_key"])
		assert.Equal(t, "NONE", route["authorization_type"], "no authorizer by default")
	}
	assert.Equal(t, "$default", planned(t, plan, `aws_apigatewayv2_route.this["$default"]`)["route_response_selection_expression"], "$default is two-way")
	assert.Nil(t, planned(t, plan, `aws_apigatewayv2_route.this["$connect"]`)["route_response_selection_expression"])
	rr := planned(t, plan, `aws_apigatewayv2_route_response.this["$default"]`)
	assert.Equal(t, "$default", rr["route_response_key"])
	assert.Len(t, resourcesOfType(plan, "aws_apigatewayv2_route_response"), 1)

	integration := planned(t, plan, `aws_apigatewayv2_integration.this["websocket"]`)
	assert.Equal(t, "AWS_PROXY", integration["integration_type"])
	assert.Len(t, resourcesOfType(plan, "aws_apigatewayv2_integration"), 1)

	// The first deployment; the deployer makes the later ones after every
	// route change (TestRemovedRouteIsUndeployedInOneApply).
	deployment := plan.ResourceChangesMap["aws_apigatewayv2_deployment.this"]
	require.NotNil(t, deployment)
	assert.NotContains(t, plan.RawPlan.Config.RootModule.Resources[indexOfConfig(t, plan, "aws_apigatewayv2_deployment.this")].Expressions, "triggers")
	assert.Contains(t, plan.RawPlan.Config.RootModule.Resources[indexOfConfig(t, plan, "aws_lambda_invocation.redeploy")].Expressions, "triggers")

	stage := planned(t, plan, "aws_apigatewayv2_stage.this")
	assert.Equal(t, "live", stage["name"])
	routeSettings := block(t, stage, "default_route_settings")
	assert.EqualValues(t, 500, routeSettings["throttling_burst_limit"])
	assert.EqualValues(t, 1000, routeSettings["throttling_rate_limit"])
	assert.Equal(t, false, routeSettings["detailed_metrics_enabled"])
	logFormat := block(t, stage, "access_log_settings")["format"].(string)
	var fields map[string]string
	require.NoError(t, json.Unmarshal([]byte(logFormat), &fields), "access log format is JSON")
	assert.Equal(t, "$context.connectionId", fields["connectionId"])
	assert.EqualValues(t, 30, planned(t, plan, "aws_cloudwatch_log_group.access[0]")["retention_in_days"])

	table := planned(t, plan, "aws_dynamodb_table.this")
	assert.Equal(t, "wst-defaults", table["name"])
	assert.Equal(t, "PAY_PER_REQUEST", table["billing_mode"])
	assert.Equal(t, "pk", table["hash_key"])
	assert.Equal(t, "sk", table["range_key"])
	assert.Equal(t, map[string]interface{}{"attribute_name": "ttl", "enabled": true}, pick(block(t, table, "ttl"), "attribute_name", "enabled"))
	assert.Equal(t, true, block(t, table, "point_in_time_recovery")["enabled"])
	assert.Equal(t, true, block(t, table, "server_side_encryption")["enabled"])
	assert.Equal(t, false, table["deletion_protection_enabled"])
	gsis := map[string][]string{}
	for _, g := range table["global_secondary_index"].([]interface{}) {
		gsi := g.(map[string]interface{})
		assert.Equal(t, "INCLUDE", gsi["projection_type"], gsi["name"])
		assert.Equal(t, []interface{}{"ttl"}, gsi["non_key_attributes"], gsi["name"])
		gsis[gsi["name"].(string)] = []string{gsi["hash_key"].(string), gsi["range_key"].(string)}
	}
	assert.Equal(t, map[string][]string{
		"channel-index": {"gsi1pk", "gsi1sk"},
		"user-index":    {"gsi2pk", "gsi2sk"},
		"shard-index":   {"gsi3pk", "gsi3sk"},
	}, gsis)

	assert.ElementsMatch(t, []string{`aws_lambda_function.this["websocket"]`, `aws_lambda_function.this["publisher"]`, `aws_lambda_function.this["deployer"]`}, resourcesOfType(plan, "aws_lambda_function"), "no authorizer function without jwt")
	for _, fn := range []string{"websocket", "publisher"} {
		addr := `aws_lambda_function.this["` + fn + `"]`
		f := planned(t, plan, addr)
		assert.Equal(t, "wst-defaults-"+fn, f["function_name"])
		assert.Equal(t, "provided.al2023", f["runtime"])
		assert.Equal(t, "bootstrap", f["handler"])
		assert.Equal(t, []interface{}{"arm64"}, f["architectures"])
		assert.Equal(t, "PassThrough", block(t, f, "tracing_config")["mode"])
		assert.Equal(t, ".terraform/websocket-lambdas/wst-defaults/"+fn+".zip", strings.TrimPrefix(f["filename"].(string), "./"))
		assert.NotEmpty(t, f["source_code_hash"], "source_code_hash is known at plan time")
		env := environment(t, plan, addr)
		assert.Equal(t, "wst-defaults", env["WS_TABLE_NAME"])
		assert.Equal(t, "info", env["WS_LOG_LEVEL"])
		assert.Equal(t, "256", env["WS_SEND_CONCURRENCY"])
		assert.Equal(t, "400", env["GOGC"], "the sending functions run a lighter GC (docs/benchmarks.md)")
		assert.EqualValues(t, map[string]int{"websocket": 256, "publisher": 743}[fn], f["memory_size"], "the publisher gets the CPU for 10,000 posts/s (docs/benchmarks.md)")
		assert.Equal(t, map[string]string{"websocket": "204MiB", "publisher": "594MiB"}[fn], env["GOMEMLIMIT"], "80% of the function's memory")
		assert.Equal(t, "1", env["GOMAXPROCS"], "Go runs on the CPU the memory buys (under one vCPU), not the vCPUs Lambda shows")
		assert.Equal(t, "2h10m", env["WS_CONNECTION_TTL"])
		assert.Equal(t, "0", env["WS_MAX_SEND_RATE"])
		assert.NotContains(t, env, "WS_EVENT_BUS_NAME", "events are off by default")
		// Both join channels: the websocket function on subscribe, the publisher on its join command.
		assert.Equal(t, "100", env["WS_MAX_CHANNELS_PER_CONNECTION"], "100 channels per connection by default")
		assert.NotContains(t, env, "WS_HISTORY", "channel history is opt-in")
		assert.EqualValues(t, 30, planned(t, plan, `aws_cloudwatch_log_group.function["`+fn+`"]`)["retention_in_days"])
		assert.Equal(t, "/aws/lambda/wst-defaults-"+fn, planned(t, plan, `aws_cloudwatch_log_group.function["`+fn+`"]`)["name"])
		assert.Contains(t, plan.ResourcePlannedValuesMap, `aws_iam_role.function["`+fn+`"]`)
		assert.Contains(t, plan.ResourcePlannedValuesMap, `aws_iam_role_policy.function["`+fn+`"]`)
	}
	assert.NotEqual(t, planned(t, plan, `aws_lambda_function.this["websocket"]`)["source_code_hash"], planned(t, plan, `aws_lambda_function.this["publisher"]`)["source_code_hash"])
	// The deployer: small, 30 s, its own log group and role; it knows only
	// the stage it redeploys (the API id is unknown until apply here).
	deployer := planned(t, plan, `aws_lambda_function.this["deployer"]`)
	assert.Equal(t, "wst-defaults-deployer", deployer["function_name"])
	assert.EqualValues(t, 128, deployer["memory_size"])
	assert.EqualValues(t, 30, deployer["timeout"])
	assert.Equal(t, "provided.al2023", deployer["runtime"])
	assert.Equal(t, "live", environment(t, plan, `aws_lambda_function.this["deployer"]`)["WS_STAGE_NAME"])
	assert.EqualValues(t, 30, planned(t, plan, `aws_cloudwatch_log_group.function["deployer"]`)["retention_in_days"])
	assert.Contains(t, plan.ResourcePlannedValuesMap, `aws_iam_role_policy.function["deployer"]`)
	assert.Contains(t, plan.ResourcePlannedValuesMap, "aws_lambda_invocation.redeploy")
	assert.Contains(t, plan.ResourcePlannedValuesMap, "terraform_data.route_set")
	// The management endpoint is derived from the API's endpoint: unknown until apply here.
	assert.Contains(t, plan.RawPlan.ResourceChanges[indexOfChange(t, plan, `aws_lambda_function.this["websocket"]`)].Change.AfterUnknown.(map[string]interface{}), "environment")

	build := planned(t, plan, "terraform_data.build[0]")
	triggers := build["triggers_replace"].(map[string]interface{})
	assert.Equal(t, "arm64", triggers["arch"])
	assert.Equal(t, "websocket,publisher,deployer", triggers["functions"])
	assert.Len(t, triggers["source_hash"], 64)
	// The absolute output folder (it contains the name) is a trigger; the zips
	// are missing before the first build, so their trigger is unknown at plan.
	outputDir, _ := triggers["output_dir"].(string)
	assert.True(t, filepath.IsAbs(outputDir), "output_dir %q is absolute", outputDir)
	assert.True(t, strings.HasSuffix(outputDir, "/.terraform/websocket-lambdas/wst-defaults"), outputDir)
	buildUnknown := plan.RawPlan.ResourceChanges[indexOfChange(t, plan, "terraform_data.build[0]")].Change.AfterUnknown.(map[string]interface{})
	assert.Equal(t, map[string]interface{}{"zips": true}, buildUnknown["triggers_replace"], "missing zips: the zips trigger is unknown until the build ran")

	rule := planned(t, plan, "aws_cloudwatch_event_rule.cleanup[0]")
	assert.Equal(t, "rate(15 minutes)", rule["schedule_expression"])
	assert.JSONEq(t, `{"action":"cleanup"}`, planned(t, plan, "aws_cloudwatch_event_target.cleanup[0]")["input"].(string))
	assert.Equal(t, "events.amazonaws.com", planned(t, plan, "aws_lambda_permission.cleanup[0]")["principal"])
	assert.Equal(t, "apigateway.amazonaws.com", planned(t, plan, "aws_lambda_permission.websocket")["principal"])

	for _, absent := range []string{"aws_apigatewayv2_authorizer", "aws_apigatewayv2_domain_name", "aws_apigatewayv2_api_mapping", "aws_cloudwatch_event_bus",
		"aws_sqs_queue", "aws_sqs_queue_redrive_allow_policy", "aws_lambda_event_source_mapping"} {
		assert.Emptyf(t, resourcesOfType(plan, absent), "%s is off by default", absent)
	}
	for _, fn := range []string{"websocket", "publisher"} {
		for _, name := range []string{"WS_FANOUT_QUEUE_URL", "WS_FANOUT_THRESHOLD", "WS_FANOUT_BATCH_SIZE", "WS_FANOUT_RATE_BUDGET", "WS_FANOUT_MAX_CONCURRENCY"} {
			assert.NotContainsf(t, environment(t, plan, `aws_lambda_function.this["`+fn+`"]`), name, "distributed fan-out is off by default (%s)", fn)
		}
	}
	for _, kind := range []string{"aws_cloudwatch_log_group", "aws_iam_role", "aws_iam_role_policy"} {
		assert.NotContains(t, plan.ResourcePlannedValuesMap, kind+`.function["fanout"]`, "no fan-out worker by default")
	}
	for _, name := range []string{"fanout_queue_url", "fanout_queue_arn", "fanout_dlq_url", "fanout_dlq_arn", "fanout_function_name", "fanout_function_arn"} {
		assert.Nilf(t, outputValue(t, plan, name), "output %s is null when distributed fan-out is off", name)
	}
	assert.Equal(t, "wst-defaults-publisher", outputValue(t, plan, "publisher_function_name"))
	assert.Equal(t, "live", outputValue(t, plan, "stage_name"))
}

// TestPlanToggles: each option adds and removes what it should.
func TestPlanToggles(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		vars  map[string]interface{}
		check func(t *testing.T, plan *terraform.PlanStruct)
	}{
		{
			name: "authorizer jwt with an SSM parameter",
			vars: map[string]interface{}{"authorizer": map[string]interface{}{
				"mode": "jwt",
				"jwt":  map[string]interface{}{"secret_ssm_parameter": "/ws/jwt", "issuer": "https://issuer.example", "audience": "ws", "user_claim": "uid"},
			}},
			check: func(t *testing.T, plan *terraform.PlanStruct) {
				authz := planned(t, plan, "aws_apigatewayv2_authorizer.this[0]")
				assert.Equal(t, "REQUEST", authz["authorizer_type"])
				assert.Equal(t, []interface{}{defaultIdentitySource}, authz["identity_sources"])
				assert.Equal(t, "CUSTOM", planned(t, plan, `aws_apigatewayv2_route.this["$connect"]`)["authorization_type"])
				assert.Equal(t, "NONE", planned(t, plan, `aws_apigatewayv2_route.this["$default"]`)["authorization_type"], "authorizers run on $connect only")
				assert.Equal(t, "NONE", planned(t, plan, `aws_apigatewayv2_route.this["$disconnect"]`)["authorization_type"])
				f := planned(t, plan, `aws_lambda_function.this["authorizer"]`)
				assert.Equal(t, "provided.al2023", f["runtime"])
				env := environment(t, plan, `aws_lambda_function.this["authorizer"]`)
				assert.Equal(t, "/ws/jwt", env["WS_JWT_SECRET_SSM_PARAMETER"])
				assert.Equal(t, "https://issuer.example", env["WS_JWT_ISSUER"])
				assert.Equal(t, "ws", env["WS_JWT_AUDIENCE"])
				assert.Equal(t, "uid", env["WS_JWT_USER_CLAIM"])
				assert.Equal(t, "channels", env["WS_JWT_CHANNELS_CLAIM"])
				assert.Equal(t, "5s", env["WS_JWT_LEEWAY"], "5 seconds of clock skew by default")
				assert.Equal(t, defaultIdentitySource, env["WS_JWT_IDENTITY_SOURCE"], "the token comes from the first identity source")
				assert.NotContains(t, env, "WS_JWT_TOKEN_USE", "token_use is not checked unless set")
				assert.NotContains(t, env, "WS_JWT_JWKS_URL")
				assert.NotContains(t, env, "WS_JWT_SECRET")
				assert.Equal(t, "websocket,publisher,deployer,authorizer", planned(t, plan, "terraform_data.build[0]")["triggers_replace"].(map[string]interface{})["functions"])
				assert.Contains(t, plan.ResourcePlannedValuesMap, "aws_lambda_permission.authorizer[0]")
			},
		},
		{
			name: "authorizer jwt with a JWKS URL (Amazon Cognito access tokens), leeway and a header identity source",
			vars: map[string]interface{}{"authorizer": map[string]interface{}{
				"mode":             "jwt",
				"identity_sources": []string{"route.request.header.Authorization", "route.request.querystring.client"},
				"jwt": map[string]interface{}{
					"jwks_url":       cognitoJWKSURL,
					"issuer":         "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123",
					"leeway_seconds": 30,
					"token_use":      "access",
				},
			}},
			check: func(t *testing.T, plan *terraform.PlanStruct) {
				env := environment(t, plan, `aws_lambda_function.this["authorizer"]`)
				assert.Equal(t, cognitoJWKSURL, env["WS_JWT_JWKS_URL"])
				assert.Equal(t, "30s", env["WS_JWT_LEEWAY"])
				assert.Equal(t, "access", env["WS_JWT_TOKEN_USE"])
				assert.Equal(t, "route.request.header.Authorization", env["WS_JWT_IDENTITY_SOURCE"], "the first identity source")
				for _, name := range []string{"WS_JWT_PUBLIC_KEY", "WS_JWT_SECRET", "WS_JWT_SECRET_ARN", "WS_JWT_SECRET_SSM_PARAMETER", "WS_JWT_PUBLIC_KEY_SSM_PARAMETER", "WS_JWT_PUBLIC_KEY_SECRET_ARN"} {
					assert.NotContainsf(t, env, name, "the JWKS URL is the only key source (%s)", name)
				}
				authz := planned(t, plan, "aws_apigatewayv2_authorizer.this[0]")
				assert.Equal(t, []interface{}{"route.request.header.Authorization", "route.request.querystring.client"}, authz["identity_sources"])
			},
		},
		{
			name: "authorizer jwt with leeway 0, ID tokens and the largest inline key",
			vars: map[string]interface{}{"authorizer": map[string]interface{}{
				"mode": "jwt",
				"jwt":  map[string]interface{}{"public_key": "-----BEGIN " + strings.Repeat("k", 3072-len("-----BEGIN ")), "leeway_seconds": 0, "token_use": "id"},
			}},
			check: func(t *testing.T, plan *terraform.PlanStruct) {
				env := environment(t, plan, `aws_lambda_function.this["authorizer"]`)
				assert.Equal(t, "0s", env["WS_JWT_LEEWAY"])
				assert.Equal(t, "id", env["WS_JWT_TOKEN_USE"])
				assert.Len(t, env["WS_JWT_PUBLIC_KEY"], 3072, "a 3 KB key still fits the 4 KB environment")
			},
		},
		{
			name: "limits at their lower bounds: throttling 1, one channel per connection; a new bus with every allowed character",
			vars: map[string]interface{}{
				"throttling_burst_limit":      1,
				"throttling_rate_limit":       1,
				"max_channels_per_connection": 1,
				"event_bus":                   map[string]interface{}{"create": true, "name": "My.bus_1-x"},
			},
			check: func(t *testing.T, plan *terraform.PlanStruct) {
				settings := block(t, planned(t, plan, "aws_apigatewayv2_stage.this"), "default_route_settings")
				assert.EqualValues(t, 1, settings["throttling_burst_limit"])
				assert.EqualValues(t, 1, settings["throttling_rate_limit"])
				assert.Equal(t, "1", environment(t, plan, `aws_lambda_function.this["websocket"]`)["WS_MAX_CHANNELS_PER_CONNECTION"])
				assert.Equal(t, "My.bus_1-x", planned(t, plan, "aws_cloudwatch_event_bus.this[0]")["name"])
			},
		},
		{
			name: "channel history sets WS_HISTORY on both publishing functions",
			vars: map[string]interface{}{"history": []interface{}{
				map[string]interface{}{"pattern": "chat-*", "size": 50, "ttl": "90s"},
				map[string]interface{}{"pattern": "news"},
				map[string]interface{}{"pattern": "room-[^x-z]?-*"}, // a class is a valid glob
			}},
			check: func(t *testing.T, plan *terraform.PlanStruct) {
				want := `[{"pattern":"chat-*","size":50,"ttl":"90s"},{"pattern":"news","size":100,"ttl":"1h"},{"pattern":"room-[^x-z]?-*","size":100,"ttl":"1h"}]`
				for _, fn := range []string{"websocket", "publisher"} {
					assert.Equal(t, want, environment(t, plan, `aws_lambda_function.this["`+fn+`"]`)["WS_HISTORY"], fn)
				}
			},
		},
		{
			name: "existing partner event bus by name keeps its slash",
			vars: map[string]interface{}{"event_bus": map[string]interface{}{"name": "aws.partner/example.com/123/ws"}, "max_channels_per_connection": 250},
			check: func(t *testing.T, plan *terraform.PlanStruct) {
				assert.Empty(t, resourcesOfType(plan, "aws_cloudwatch_event_bus"))
				env := environment(t, plan, `aws_lambda_function.this["websocket"]`)
				assert.Equal(t, "aws.partner/example.com/123/ws", env["WS_EVENT_BUS_NAME"])
				assert.Equal(t, "250", env["WS_MAX_CHANNELS_PER_CONNECTION"])
			},
		},
		{
			name: "authorizer jwt with an inline secret stays out of plan output",
			vars: map[string]interface{}{
				"authorizer":            map[string]interface{}{"mode": "jwt"},
				"authorizer_jwt_secret": "s3cr3t-value-for-tests-32-bytes-long",
			},
			check: func(t *testing.T, plan *terraform.PlanStruct) {
				rc := plan.ResourceChangesMap[`aws_lambda_function.this["authorizer"]`]
				require.NotNil(t, rc)
				sensitive, err := json.Marshal(rc.Change.AfterSensitive)
				require.NoError(t, err)
				assert.Contains(t, string(sensitive), `"environment"`, "the environment holding the secret is marked sensitive")
			},
		},
		{
			name: "authorizer lambda uses the user's function",
			vars: map[string]interface{}{"authorizer": map[string]interface{}{
				"mode": "lambda", "function_arn": userAuthorizerARN,
				// A context variable is an identity source API Gateway takes.
				"identity_sources": []string{"route.request.header.Authorization", "context.identity.sourceIp"},
			}},
			check: func(t *testing.T, plan *terraform.PlanStruct) {
				assert.NotContains(t, plan.ResourcePlannedValuesMap, `aws_lambda_function.this["authorizer"]`)
				authz := planned(t, plan, "aws_apigatewayv2_authorizer.this[0]")
				assert.Equal(t, "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/"+userAuthorizerARN+"/invocations", authz["authorizer_uri"])
				assert.ElementsMatch(t, []interface{}{"route.request.header.Authorization", "context.identity.sourceIp"}, authz["identity_sources"])
				assert.Equal(t, userAuthorizerARN, planned(t, plan, "aws_lambda_permission.authorizer[0]")["function_name"])
				assert.Equal(t, "CUSTOM", planned(t, plan, `aws_apigatewayv2_route.this["$connect"]`)["authorization_type"])
			},
		},
		{
			name: "custom routes: built-in (events on) and user function",
			vars: map[string]interface{}{
				"routes": map[string]interface{}{
					"typing": map[string]interface{}{},
					"orders": map[string]interface{}{"handler": "lambda", "function_arn": userFunctionARN, "two_way": false},
				},
				// A built-in custom route becomes websocket.message events.
				"event_bus": map[string]interface{}{"create": true},
			},
			check: func(t *testing.T, plan *terraform.PlanStruct) {
				assert.Equal(t, "$default", planned(t, plan, `aws_apigatewayv2_route.this["typing"]`)["route_response_selection_expression"])
				assert.Contains(t, plan.ResourcePlannedValuesMap, `aws_apigatewayv2_route_response.this["typing"]`)
				assert.NotContains(t, plan.ResourcePlannedValuesMap, `aws_apigatewayv2_route_response.this["orders"]`)
				user := planned(t, plan, `aws_apigatewayv2_integration.this["route:orders"]`)
				assert.Equal(t, "AWS_PROXY", user["integration_type"])
				assert.Equal(t, "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/"+userFunctionARN+"/invocations", user["integration_uri"])
				assert.Len(t, resourcesOfType(plan, "aws_apigatewayv2_integration"), 2, "typing shares the websocket integration")
				perm := planned(t, plan, `aws_lambda_permission.route["orders"]`)
				assert.Equal(t, userFunctionARN, perm["function_name"])
				assert.Equal(t, "apigateway.amazonaws.com", perm["principal"])
				assert.NotContains(t, plan.ResourcePlannedValuesMap, `aws_lambda_permission.route["typing"]`)
			},
		},
		{
			name: "custom domain moves the wss URL only",
			vars: map[string]interface{}{"custom_domain": map[string]interface{}{"domain_name": "ws.example.com", "certificate_arn": certificateARN, "api_mapping_key": "v1"}},
			check: func(t *testing.T, plan *terraform.PlanStruct) {
				domain := planned(t, plan, "aws_apigatewayv2_domain_name.this[0]")
				assert.Equal(t, "ws.example.com", domain["domain_name"])
				assert.Equal(t, certificateARN, block(t, domain, "domain_name_configuration")["certificate_arn"])
				assert.Equal(t, "v1", planned(t, plan, "aws_apigatewayv2_api_mapping.this[0]")["api_mapping_key"])
				assert.Equal(t, "wss://ws.example.com/v1", outputValue(t, plan, "websocket_url"))
				// The functions keep the execute-api endpoint (known after
				// apply; TestManagementEndpointIgnoresCustomDomain applies it).
				assert.Nil(t, outputValue(t, plan, "management_endpoint"), "not the custom domain: derived from the API's endpoint, unknown at plan")
				assert.NotContains(t, environment(t, plan, `aws_lambda_function.this["publisher"]`), "WS_MANAGEMENT_ENDPOINT", "not the custom domain: unknown until the API exists")
			},
		},
		{
			name: "events on a new bus",
			vars: map[string]interface{}{"event_bus": map[string]interface{}{"create": true}},
			check: func(t *testing.T, plan *terraform.PlanStruct) {
				assert.Equal(t, "wst-toggle-websocket", planned(t, plan, "aws_cloudwatch_event_bus.this[0]")["name"])
				for _, fn := range []string{"websocket", "publisher"} {
					env := environment(t, plan, `aws_lambda_function.this["`+fn+`"]`)
					assert.Equal(t, "wst-toggle-websocket", env["WS_EVENT_BUS_NAME"])
					assert.Equal(t, "websocket", env["WS_EVENT_SOURCE"])
				}
			},
		},
		{
			name: "events on an existing bus",
			vars: map[string]interface{}{"event_bus": map[string]interface{}{"name": existingEventBusARN, "source": "myapp.ws"}},
			check: func(t *testing.T, plan *terraform.PlanStruct) {
				assert.Empty(t, resourcesOfType(plan, "aws_cloudwatch_event_bus"))
				env := environment(t, plan, `aws_lambda_function.this["websocket"]`)
				assert.Equal(t, existingEventBusARN, env["WS_EVENT_BUS_NAME"])
				assert.Equal(t, "myapp.ws", env["WS_EVENT_SOURCE"])
				assert.Equal(t, existingEventBusARN, outputValue(t, plan, "event_bus_arn"))
			},
		},
		{
			name: "prebuilt artifacts replace the build",
			vars: map[string]interface{}{"lambda_artifacts": nil}, // filled in below
			check: func(t *testing.T, plan *terraform.PlanStruct) {
				assert.Equal(t, []string{"terraform_data.route_set"}, resourcesOfType(plan, "terraform_data"), "no build resource with prebuilt zips")
				for _, fn := range []string{"websocket", "publisher"} {
					f := planned(t, plan, `aws_lambda_function.this["`+fn+`"]`)
					body, err := os.ReadFile(f["filename"].(string))
					require.NoError(t, err)
					sum := sha256.Sum256(body)
					assert.Equal(t, base64.StdEncoding.EncodeToString(sum[:]), f["source_code_hash"], "hash of the given zip")
				}
			},
		},
		{
			name: "distributed fan-out with defaults",
			vars: map[string]interface{}{"distributed_fanout": map[string]interface{}{"enabled": true}},
			check: func(t *testing.T, plan *terraform.PlanStruct) {
				queue := planned(t, plan, "aws_sqs_queue.fanout[0]")
				assert.Equal(t, "wst-toggle-fanout", queue["name"])
				assert.EqualValues(t, 6*60, queue["visibility_timeout_seconds"], "six times the worker's default timeout")
				assert.EqualValues(t, 3600, queue["message_retention_seconds"])
				assert.Equal(t, true, queue["sqs_managed_sse_enabled"], "SSE-SQS without a customer key")
				assert.Nil(t, queue["kms_master_key_id"])
				assert.Contains(t, plan.RawPlan.ResourceChanges[indexOfChange(t, plan, "aws_sqs_queue.fanout[0]")].Change.AfterUnknown.(map[string]interface{}), "redrive_policy", "redrive_policy names the DLQ's ARN (known after apply; TestDistributedFanoutWiring checks it)")
				dlq := planned(t, plan, "aws_sqs_queue.fanout_dlq[0]")
				assert.Equal(t, "wst-toggle-fanout-dlq", dlq["name"])
				assert.EqualValues(t, 14*24*3600, dlq["message_retention_seconds"], "the DLQ outlives the queue's retention")
				assert.Equal(t, true, dlq["sqs_managed_sse_enabled"])
				assert.Len(t, resourcesOfType(plan, "aws_sqs_queue"), 2)
				assert.Contains(t, plan.ResourcePlannedValuesMap, "aws_sqs_queue_redrive_allow_policy.fanout_dlq[0]")

				mapping := planned(t, plan, "aws_lambda_event_source_mapping.fanout[0]")
				assert.EqualValues(t, 1, mapping["batch_size"], "messages_per_invocation unset: one batch of 500 is half a second at a worker's 1,000/s")
				assert.Equal(t, []interface{}{"ReportBatchItemFailures"}, mapping["function_response_types"])
				assert.EqualValues(t, 10, block(t, mapping, "scaling_config")["maximum_concurrency"])

				worker := planned(t, plan, `aws_lambda_function.this["fanout"]`)
				assert.Equal(t, "wst-toggle-fanout", worker["function_name"])
				assert.Equal(t, "provided.al2023", worker["runtime"])
				assert.Equal(t, "bootstrap", worker["handler"])
				assert.EqualValues(t, 60, worker["timeout"])
				assert.EqualValues(t, 743, worker["memory_size"], "the CPU for 10,000 posts/s (docs/benchmarks.md)")
				assert.Equal(t, ".terraform/websocket-lambdas/wst-toggle/fanout.zip", strings.TrimPrefix(worker["filename"].(string), "./"))
				env := environment(t, plan, `aws_lambda_function.this["fanout"]`)
				assert.Equal(t, "wst-toggle", env["WS_TABLE_NAME"])
				assert.Equal(t, "info", env["WS_LOG_LEVEL"])
				assert.Equal(t, "256", env["WS_SEND_CONCURRENCY"])
				assert.Equal(t, "0", env["WS_MAX_SEND_RATE"])
				for _, name := range []string{"WS_FANOUT_QUEUE_URL", "WS_FANOUT_THRESHOLD", "WS_FANOUT_BATCH_SIZE", "WS_FANOUT_RATE_BUDGET", "WS_EVENT_BUS_NAME"} {
					assert.NotContainsf(t, env, name, "the worker never enqueues or emits events (%s)", name)
				}
				for _, fn := range []string{"websocket", "publisher"} {
					env := environment(t, plan, `aws_lambda_function.this["`+fn+`"]`)
					assert.Equal(t, "2000", env["WS_FANOUT_THRESHOLD"], fn)
					assert.Equal(t, "500", env["WS_FANOUT_BATCH_SIZE"], fn)
					assert.Equal(t, "10000", env["WS_FANOUT_RATE_BUDGET"], fn)
					assert.Equal(t, "10", env["WS_FANOUT_MAX_CONCURRENCY"], fn)
				}
				for _, kind := range []string{"aws_cloudwatch_log_group", "aws_iam_role", "aws_iam_role_policy"} {
					assert.Contains(t, plan.ResourcePlannedValuesMap, kind+`.function["fanout"]`, "the worker has its own "+kind)
				}
				assert.Equal(t, "/aws/lambda/wst-toggle-fanout", planned(t, plan, `aws_cloudwatch_log_group.function["fanout"]`)["name"])
				assert.Equal(t, "websocket,publisher,deployer,fanout", planned(t, plan, "terraform_data.build[0]")["triggers_replace"].(map[string]interface{})["functions"])
				assert.Equal(t, "wst-toggle-fanout", outputValue(t, plan, "fanout_function_name"))
			},
		},
		{
			name: "distributed fan-out tuned, customer key, prebuilt artifacts",
			vars: map[string]interface{}{
				"distributed_fanout": map[string]interface{}{
					"enabled": true, "threshold": 0, "batch_size": 1000, "max_concurrency": 50,
					"messages_per_invocation": 4, "max_receive_count": 3, "message_retention_seconds": 2400, "kms_key_arn": keyARN,
				},
				"lambda_timeout":     map[string]interface{}{"fanout": 120},
				"lambda_memory_size": map[string]interface{}{"fanout": 1024, "publisher": 3600},
				"lambda_artifacts":   nil, // filled in below, with a fanout zip
			},
			check: func(t *testing.T, plan *terraform.PlanStruct) {
				assert.Equal(t, []string{"terraform_data.route_set"}, resourcesOfType(plan, "terraform_data"), "no build resource with prebuilt zips")
				for _, addr := range []string{"aws_sqs_queue.fanout[0]", "aws_sqs_queue.fanout_dlq[0]"} {
					q := planned(t, plan, addr)
					assert.Equal(t, keyARN, q["kms_master_key_id"], addr)
					assert.EqualValues(t, 300, q["kms_data_key_reuse_period_seconds"], addr)
					assert.Nil(t, q["sqs_managed_sse_enabled"], "%s: SSE-SQS is not set together with a customer key", addr)
				}
				queue := planned(t, plan, "aws_sqs_queue.fanout[0]")
				assert.EqualValues(t, 6*120, queue["visibility_timeout_seconds"])
				assert.EqualValues(t, 2400, queue["message_retention_seconds"])
				mapping := planned(t, plan, "aws_lambda_event_source_mapping.fanout[0]")
				assert.EqualValues(t, 4, mapping["batch_size"])
				assert.EqualValues(t, 50, block(t, mapping, "scaling_config")["maximum_concurrency"])
				worker := planned(t, plan, `aws_lambda_function.this["fanout"]`)
				assert.EqualValues(t, 120, worker["timeout"])
				assert.EqualValues(t, 1024, worker["memory_size"])
				for fn, want := range map[string][2]string{"fanout": {"819MiB", "1"}, "publisher": {"2880MiB", "2"}, "websocket": {"204MiB", "1"}} {
					env := environment(t, plan, `aws_lambda_function.this["`+fn+`"]`)
					assert.Equal(t, want[0], env["GOMEMLIMIT"], fn)
					assert.Equal(t, want[1], env["GOMAXPROCS"], "%s: one P per 1,769 MB (one vCPU)", fn)
				}
				body, err := os.ReadFile(worker["filename"].(string))
				require.NoError(t, err)
				sum := sha256.Sum256(body)
				assert.Equal(t, base64.StdEncoding.EncodeToString(sum[:]), worker["source_code_hash"], "hash of the given fanout zip")
				for _, fn := range []string{"websocket", "publisher"} {
					env := environment(t, plan, `aws_lambda_function.this["`+fn+`"]`)
					assert.Equal(t, "0", env["WS_FANOUT_THRESHOLD"], fn)
					assert.Equal(t, "1000", env["WS_FANOUT_BATCH_SIZE"], fn)
					assert.Equal(t, "50", env["WS_FANOUT_MAX_CONCURRENCY"], fn, "the hint divides by the mapping's maximum concurrency")
				}
			},
		},
		{
			name: "x86_64, tracing, provisioned table, no cleanup, no access logs",
			vars: map[string]interface{}{
				"lambda_architecture":      "x86_64",
				"tracing_enabled":          true,
				"dynamodb":                 map[string]interface{}{"billing_mode": "PROVISIONED", "read_capacity": 5, "write_capacity": 3, "kms_key_arn": keyARN, "deletion_protection": true, "point_in_time_recovery": false},
				"cleanup_schedule_minutes": 0,
				"access_logs_enabled":      false,
				"detailed_metrics_enabled": true,
			},
			check: func(t *testing.T, plan *terraform.PlanStruct) {
				f := planned(t, plan, `aws_lambda_function.this["websocket"]`)
				assert.Equal(t, []interface{}{"x86_64"}, f["architectures"])
				assert.Equal(t, "Active", block(t, f, "tracing_config")["mode"])
				assert.Equal(t, "amd64", planned(t, plan, "terraform_data.build[0]")["triggers_replace"].(map[string]interface{})["arch"])
				table := planned(t, plan, "aws_dynamodb_table.this")
				assert.Equal(t, "PROVISIONED", table["billing_mode"])
				assert.EqualValues(t, 5, table["read_capacity"])
				assert.EqualValues(t, 3, table["write_capacity"])
				assert.Equal(t, true, table["deletion_protection_enabled"])
				assert.Equal(t, false, block(t, table, "point_in_time_recovery")["enabled"])
				assert.Equal(t, keyARN, block(t, table, "server_side_encryption")["kms_key_arn"])
				for _, g := range table["global_secondary_index"].([]interface{}) {
					assert.EqualValues(t, 5, g.(map[string]interface{})["read_capacity"])
				}
				assert.Empty(t, resourcesOfType(plan, "aws_cloudwatch_event_rule"))
				assert.ElementsMatch(t, []string{`aws_cloudwatch_log_group.function["websocket"]`, `aws_cloudwatch_log_group.function["publisher"]`, `aws_cloudwatch_log_group.function["deployer"]`}, resourcesOfType(plan, "aws_cloudwatch_log_group"), "no access log group")
				stage := planned(t, plan, "aws_apigatewayv2_stage.this")
				assert.Empty(t, stage["access_log_settings"])
				assert.Equal(t, true, block(t, stage, "default_route_settings")["detailed_metrics_enabled"])
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			vars := map[string]interface{}{"name": "wst-toggle"}
			for k, v := range tc.vars {
				vars[k] = v
			}
			if _, ok := vars["lambda_artifacts"]; ok {
				functions := []string{"websocket", "publisher"}
				if _, ok := vars["distributed_fanout"]; ok {
					functions = append(functions, "fanout")
				}
				vars["lambda_artifacts"] = writeFakeZips(t, functions...)
			}
			tc.check(t, planModule(t, vars))
		})
	}
}

// resourcesOfType lists planned addresses of one resource type (root module).
func resourcesOfType(plan *terraform.PlanStruct, typ string) []string {
	var out []string
	for addr, r := range plan.ResourcePlannedValuesMap {
		if r.Type == typ && r.Mode == "managed" {
			out = append(out, addr)
		}
	}
	return out
}

func pick(m map[string]interface{}, keys ...string) map[string]interface{} {
	out := map[string]interface{}{}
	for _, k := range keys {
		out[k] = m[k]
	}
	return out
}

func indexOfConfig(t *testing.T, plan *terraform.PlanStruct, address string) int {
	t.Helper()
	for i, r := range plan.RawPlan.Config.RootModule.Resources {
		if r.Address == address {
			return i
		}
	}
	require.FailNowf(t, "not in configuration", "%s", address)
	return -1
}

func indexOfChange(t *testing.T, plan *terraform.PlanStruct, address string) int {
	t.Helper()
	for i, rc := range plan.RawPlan.ResourceChanges {
		if rc.Address == address {
			return i
		}
	}
	require.FailNowf(t, "not in plan", "%s", address)
	return -1
}
