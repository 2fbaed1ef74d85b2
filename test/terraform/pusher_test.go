package terraform_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/gruntwork-io/terratest/modules/terraform"
	tfjson "github.com/hashicorp/terraform-json"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	pusherSecretARN   = "arn:aws:secretsmanager:us-east-1:123456789012:secret:pusher-AbCdEf"
	pusherCertARN     = "arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555"
	cachingDisabled   = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
	allViewerNoHost   = "b689b0a8-53d0-40ab-baf2-68738e2966ac"
	pusherStageName   = "live"
	pusherFunctionARN = "arn:aws:lambda:us-east-1:123456789012:function:wst-pusher-pusher"
)

// pusherHTTPRoutes are the Pusher HTTP API routes (docs/pusher.md).
var pusherHTTPRoutes = []string{
	"GET /apps/{app_id}/channels",
	"GET /apps/{app_id}/channels/{channel_name}",
	"GET /apps/{app_id}/channels/{channel_name}/users",
	"POST /apps/{app_id}/batch_events",
	"POST /apps/{app_id}/events",
	"POST /apps/{app_id}/users/{user_id}/terminate_connections",
}

func pusherVars(extra map[string]interface{}) map[string]interface{} {
	p := map[string]interface{}{"enabled": true, "app_id": "app-id", "key": "app-key", "secret_ssm_parameter": "/wst/pusher-secret"}
	for k, v := range extra {
		p[k] = v
	}
	return map[string]interface{}{"name": "wst-pusher", "pusher": p}
}

// TestPlanPusherMode plans Pusher mode with an alias and checks, with
// Terraform and OpenTofu, what is known at plan: the distribution's
// behaviours, policies and function association, the CloudFront Function's
// code, the handshake's origin request policy, the HTTP API routes, the
// function's environment (secret by reference only, WS_HISTORY from history)
// and the outputs.
func TestPlanPusherMode(t *testing.T) {
	t.Parallel()
	code, err := os.ReadFile(filepath.Join(repoRoot, "functions", "pusher-rewrite.js"))
	require.NoError(t, err)
	for _, tool := range []string{"terraform", "tofu"} {
		t.Run(tool, func(t *testing.T) {
			t.Parallel()
			vars := pusherVars(map[string]interface{}{"alias": "ws.example.com", "acm_certificate_arn": pusherCertARN, "price_class": "PriceClass_200", "activity_timeout": 60, "client_events": false})
			vars["history"] = []interface{}{map[string]interface{}{"pattern": "chat-*", "size": 50, "ttl": "90s"}}
			plan := terraform.InitAndPlanAndShowWithStruct(t, withPlanFile(t, options(t, tool, copyModule(t), vars)))

			welcome := planned(t, plan, "aws_lambda_function_event_invoke_config.pusher[0]")
			assert.EqualValues(t, 0, welcome["maximum_retry_attempts"], "a failed welcome is not posted again minutes later")
			assert.EqualValues(t, 60, welcome["maximum_event_age_in_seconds"])

			dist := planned(t, plan, "aws_cloudfront_distribution.pusher[0]")
			assert.Equal(t, []interface{}{"ws.example.com"}, dist["aliases"])
			assert.Equal(t, "PriceClass_200", dist["price_class"])
			assert.Equal(t, true, dist["enabled"])

			def := block(t, dist, "default_cache_behavior")
			assert.Equal(t, "pusher-websocket", def["target_origin_id"])
			assert.Equal(t, "https-only", def["viewer_protocol_policy"])
			assert.Equal(t, cachingDisabled, def["cache_policy_id"], "WebSocket handshakes are never cached")
			assert.ElementsMatch(t, []interface{}{"GET", "HEAD"}, def["allowed_methods"])
			assoc := block(t, def, "function_association")
			assert.Equal(t, "viewer-request", assoc["event_type"])

			ordered := block(t, dist, "ordered_cache_behavior")
			assert.Equal(t, "/apps/*", ordered["path_pattern"])
			assert.Equal(t, "pusher-http", ordered["target_origin_id"])
			assert.Equal(t, "https-only", ordered["viewer_protocol_policy"])
			assert.Equal(t, cachingDisabled, ordered["cache_policy_id"])
			assert.Equal(t, allViewerNoHost, ordered["origin_request_policy_id"], "the SDKs' query and body reach the HTTP API, the Host header does not")
			assert.Subset(t, ordered["allowed_methods"], []interface{}{"GET", "POST"})
			assert.Empty(t, ordered["function_association"], "the HTTP API paths are not rewritten")

			origins, ok := dist["origin"].([]interface{})
			require.True(t, ok)
			paths := map[string]interface{}{}
			for _, o := range origins {
				m := o.(map[string]interface{})
				paths[m["origin_id"].(string)] = m["origin_path"]
				cfg := block(t, m, "custom_origin_config")
				assert.Equal(t, "https-only", cfg["origin_protocol_policy"])
			}
			assert.Equal(t, map[string]interface{}{"pusher-websocket": "/" + pusherStageName, "pusher-http": nil}, paths,
				"the rewritten / lands on the stage root")

			cert := block(t, dist, "viewer_certificate")
			assert.Equal(t, pusherCertARN, cert["acm_certificate_arn"])
			assert.Equal(t, "sni-only", cert["ssl_support_method"])
			assert.Equal(t, "TLSv1.2_2021", cert["minimum_protocol_version"])

			fn := planned(t, plan, "aws_cloudfront_function.pusher[0]")
			assert.Equal(t, "cloudfront-js-2.0", fn["runtime"])
			assert.Equal(t, true, fn["publish"])
			assert.Equal(t, string(code), fn["code"], "the distribution runs the file the Node tests check")

			orp := planned(t, plan, "aws_cloudfront_origin_request_policy.pusher_websocket[0]")
			headers := block(t, block(t, orp, "headers_config"), "headers")
			assert.Subset(t, headers["items"], []interface{}{"Sec-WebSocket-Key", "Sec-WebSocket-Version", "Sec-WebSocket-Protocol", "Sec-WebSocket-Extensions"})
			assert.NotContains(t, headers["items"], "Host", "API Gateway answers only to its own host name")
			assert.Equal(t, "all", block(t, orp, "query_strings_config")["query_string_behavior"])

			ws := planned(t, plan, "aws_apigatewayv2_api.pusher[0]")
			assert.Equal(t, "WEBSOCKET", ws["protocol_type"])
			assert.Equal(t, "$request.body.event", ws["route_selection_expression"])
			for _, rk := range []string{"$connect", "$disconnect", "$default"} {
				assert.Equal(t, rk, planned(t, plan, `aws_apigatewayv2_route.pusher["`+rk+`"]`)["route_key"])
			}
			assert.Equal(t, "$default", planned(t, plan, `aws_apigatewayv2_route.pusher["$default"]`)["route_response_selection_expression"], "$default is two-way")

			assert.Equal(t, "HTTP", planned(t, plan, "aws_apigatewayv2_api.pusher_http[0]")["protocol_type"])
			assert.Equal(t, "2.0", planned(t, plan, "aws_apigatewayv2_integration.pusher_http[0]")["payload_format_version"])
			var routes []string
			for _, addr := range resourcesOfType(plan, "aws_apigatewayv2_route") {
				if strings.HasPrefix(addr, "aws_apigatewayv2_route.pusher_http[") {
					routes = append(routes, planned(t, plan, addr)["route_key"].(string))
				}
			}
			sort.Strings(routes)
			assert.Equal(t, pusherHTTPRoutes, routes, "exactly the Pusher HTTP API, no catch-all")
			assert.Equal(t, "$default", planned(t, plan, "aws_apigatewayv2_stage.pusher_http[0]")["name"])
			// The Pusher WebSocket stage logs like the main one.
			assert.Equal(t, block(t, planned(t, plan, "aws_apigatewayv2_stage.this"), "access_log_settings")["format"],
				block(t, planned(t, plan, "aws_apigatewayv2_stage.pusher[0]"), "access_log_settings")["format"], "the Pusher stage's access log line is the main API's")

			env := environment(t, plan, "aws_lambda_function.pusher[0]")
			assert.Equal(t, "app-id", env["WS_PUSHER_APP_ID"])
			assert.Equal(t, "app-key", env["WS_PUSHER_APP_KEY"])
			assert.Equal(t, "409MiB", env["GOMEMLIMIT"], "80% of the Pusher function's 512 MB")
			assert.Equal(t, "1", env["GOMAXPROCS"], "less than one vCPU's worth of memory")
			assert.Equal(t, "/wst/pusher-secret", env["WS_PUSHER_APP_SECRET_SSM_PARAMETER"])
			assert.NotContains(t, env, "WS_PUSHER_APP_SECRET", "the secret is never a plain value")
			assert.NotContains(t, env, "WS_PUSHER_APP_SECRET_ARN")
			assert.Equal(t, "false", env["WS_PUSHER_CLIENT_EVENTS"])
			assert.Equal(t, "60", env["WS_PUSHER_ACTIVITY_TIMEOUT"])
			assert.Equal(t, "100", env["WS_PUSHER_MAX_PRESENCE_USERS"])
			assert.Equal(t, "100", env["WS_MAX_CHANNELS_PER_CONNECTION"])
			assert.NotContains(t, env, "WS_FANOUT_QUEUE_URL")
			assert.Equal(t, `[{"pattern":"chat-*","size":50,"ttl":"90s"}]`, env["WS_HISTORY"], "Pusher events on history channels are numbered too")
			fnValues := planned(t, plan, "aws_lambda_function.pusher[0]")
			assert.Equal(t, "provided.al2023", fnValues["runtime"])
			assert.Equal(t, planned(t, plan, `aws_lambda_function.this["websocket"]`)["source_code_hash"], fnValues["source_code_hash"], "the websocket zip")

			// The by-role outputs name the Pusher function too.
			names, ok := outputValue(t, plan, "function_names").(map[string]interface{})
			require.True(t, ok)
			assert.Equal(t, fnValues["function_name"], names["pusher"])
			groups, ok := outputValue(t, plan, "function_log_group_names").(map[string]interface{})
			require.True(t, ok)
			assert.Equal(t, planned(t, plan, "aws_cloudwatch_log_group.pusher[0]")["name"], groups["pusher"])

			assert.Equal(t, "ws.example.com", outputValue(t, plan, "pusher_host"))
			assert.EqualValues(t, 443, outputValue(t, plan, "pusher_port"))
			assert.Equal(t, "https", outputValue(t, plan, "pusher_scheme"))
			assert.Equal(t, "app-id", outputValue(t, plan, "pusher_app_id"))
			assert.Equal(t, "app-key", outputValue(t, plan, "pusher_key"))
			envBlock, ok := outputValue(t, plan, "pusher_env").(string)
			require.True(t, ok)
			for _, line := range []string{"PUSHER_APP_ID=app-id", "PUSHER_APP_KEY=app-key", "PUSHER_HOST=ws.example.com", "PUSHER_PORT=443", "PUSHER_SCHEME=https",
				"# PUSHER_APP_SECRET: aws ssm get-parameter --region us-east-1 --with-decryption --name /wst/pusher-secret", `VITE_PUSHER_APP_KEY="${PUSHER_APP_KEY}"`, `VITE_PUSHER_HOST="${PUSHER_HOST}"`} {
				assert.Contains(t, envBlock, line)
			}
		})
	}
}

// TestPlanPusherDisabled: with the default pusher = {} nothing Pusher-related
// is planned and the Pusher outputs are null, with both tools.
func TestPlanPusherDisabled(t *testing.T) {
	t.Parallel()
	for _, tool := range []string{"terraform", "tofu"} {
		t.Run(tool, func(t *testing.T) {
			t.Parallel()
			plan := terraform.InitAndPlanAndShowWithStruct(t, withPlanFile(t, options(t, tool, copyModule(t), map[string]interface{}{"name": "wst-nopusher"})))
			require.NotEmpty(t, plan.ResourcePlannedValuesMap)
			for addr, r := range plan.ResourcePlannedValuesMap {
				assert.NotContains(t, addr, "pusher")
				assert.False(t, strings.HasPrefix(r.Type, "aws_cloudfront_"), addr)
			}
			for _, name := range []string{"pusher_host", "pusher_port", "pusher_scheme", "pusher_app_id", "pusher_key", "pusher_env", "pusher_function_name"} {
				assert.Nil(t, outputValue(t, plan, name), name)
			}
			assert.NotContains(t, environment(t, plan, `aws_lambda_function.this["publisher"]`), "WS_PUSHER_MANAGEMENT_ENDPOINT")
			names, ok := outputValue(t, plan, "function_names").(map[string]interface{})
			require.True(t, ok)
			assert.NotContains(t, names, "pusher")
		})
	}
}

// TestPusherApplyWiringAndIAM applies Pusher mode (schema-replay provider,
// stand-in zips) with the secret in Secrets Manager under a customer key, the
// table key, events and tracing on, and inspects the state: the distribution
// points at this module's origin request policy, function and API hosts; the
// permissions name each API; the Pusher policy names every action, reaches only
// its own resources and inputs, posts only to the Pusher stage and invokes only
// itself.
func TestPusherApplyWiringAndIAM(t *testing.T) {
	t.Parallel()
	// A wildcard alias names no one host: the outputs give the distribution's.
	vars := pusherVars(map[string]interface{}{"secret_ssm_parameter": nil, "secret_arn": pusherSecretARN, "secret_kms_key_arn": keyARN, "alias": "*.example.com", "acm_certificate_arn": pusherCertARN})
	vars["lambda_artifacts"] = writeFakeZips(t, "websocket", "publisher", "fanout")
	vars["dynamodb"] = map[string]interface{}{"kms_key_arn": keyARN}
	vars["event_bus"] = map[string]interface{}{"create": true}
	vars["tracing_enabled"] = true
	vars["distributed_fanout"] = map[string]interface{}{"enabled": true}
	opts := options(t, "terraform", copyModule(t), vars)
	terraform.InitAndApply(t, opts)
	var st tfjson.State
	require.NoError(t, json.Unmarshal([]byte(terraform.Show(t, opts)), &st))
	require.NotNil(t, st.Values)
	resources := stateResources(st.Values.RootModule)
	values := func(address string) map[string]interface{} {
		for _, r := range resources {
			if r.Address == address {
				return r.AttributeValues
			}
		}
		require.FailNowf(t, "not in state", "%s", address)
		return nil
	}

	wsExec := attr(t, resources, "aws_apigatewayv2_api.pusher[0]", "execution_arn")
	httpExec := attr(t, resources, "aws_apigatewayv2_api.pusher_http[0]", "execution_arn")
	mainExec := attr(t, resources, "aws_apigatewayv2_api.this", "execution_arn")
	require.NotEqual(t, wsExec, mainExec)

	dist := values("aws_cloudfront_distribution.pusher[0]")
	assert.Equal(t, []interface{}{"*.example.com"}, dist["aliases"])
	cfName := dist["domain_name"].(string)
	require.NotEmpty(t, cfName)
	assert.Equal(t, cfName, terraform.Output(t, opts, "pusher_host"), "a wildcard alias is no host: pusher_host is the distribution's name")
	assert.Equal(t, values("aws_iam_role.pusher[0]")["arn"], terraform.OutputMap(t, opts, "role_arns")["pusher"], "the Pusher role is in role_arns")
	assert.Equal(t, values("aws_lambda_function.pusher[0]")["arn"], terraform.OutputMap(t, opts, "function_arns")["pusher"])
	assert.Contains(t, terraform.Output(t, opts, "pusher_env"), "\nPUSHER_HOST="+cfName+"\n")
	def := block(t, dist, "default_cache_behavior")
	assert.Equal(t, attr(t, resources, "aws_cloudfront_origin_request_policy.pusher_websocket[0]", "id"), def["origin_request_policy_id"])
	assert.Equal(t, attr(t, resources, "aws_cloudfront_function.pusher[0]", "arn"), block(t, def, "function_association")["function_arn"])
	hosts := map[string]interface{}{}
	for _, o := range dist["origin"].([]interface{}) {
		m := o.(map[string]interface{})
		hosts[m["origin_id"].(string)] = m["domain_name"]
	}
	trim := func(endpoint string) string { return strings.SplitN(endpoint, "/", 4)[2] }
	assert.Equal(t, map[string]interface{}{
		"pusher-websocket": trim(attr(t, resources, "aws_apigatewayv2_api.pusher[0]", "api_endpoint")),
		"pusher-http":      trim(attr(t, resources, "aws_apigatewayv2_api.pusher_http[0]", "api_endpoint")),
	}, hosts)

	assert.Equal(t, wsExec+"/"+pusherStageName+"/*", values("aws_lambda_permission.pusher_websocket[0]")["source_arn"])
	assert.Equal(t, httpExec+"/*/*/apps/*", values("aws_lambda_permission.pusher_http[0]")["source_arn"])

	fnEnv := block(t, values("aws_lambda_function.pusher[0]"), "environment")["variables"].(map[string]interface{})
	assert.Equal(t, pusherSecretARN, fnEnv["WS_PUSHER_APP_SECRET_ARN"])
	assert.Equal(t, strings.Replace(attr(t, resources, "aws_apigatewayv2_api.pusher[0]", "api_endpoint"), "wss://", "https://", 1)+"/"+pusherStageName, fnEnv["WS_MANAGEMENT_ENDPOINT"],
		"the management endpoint stays the execute-api one of the Pusher stage")

	doc := parsePolicy(t, values("aws_iam_role_policy.pusher[0]")["policy"].(string))
	own := ownARNs(resources)
	sids := map[string]policyStatement{}
	for _, s := range doc.Statement {
		sids[s.Sid] = s
		assert.Equal(t, "Allow", s.Effect)
		for _, action := range s.Action {
			assert.NotContainsf(t, action, "*", "%s: action wildcard", s.Sid)
		}
		if strings.HasPrefix(s.Action[0], "xray:") {
			assert.Equal(t, []string{"*"}, []string(s.Resource))
			continue
		}
		for _, res := range s.Resource {
			assert.Truef(t, ownsResource(res, own, []string{pusherSecretARN, keyARN, pusherFunctionARN}), "%s names %s", s.Sid, res)
		}
	}
	keys := make([]string, 0, len(sids))
	for k := range sids {
		keys = append(keys, k)
	}
	assert.ElementsMatch(t, []string{"WriteOwnLogs", "ConnectionTable", "ManageConnections", "WelcomeSelfInvoke", "ReadAppSecret", "DecryptAppSecret", "TableKey", "LifecycleEvents", "EnqueueFanoutBatches", "WriteTraces"}, keys)
	// Sends above the threshold go to the fan-out worker, as protocol v1's do.
	queueARN := attr(t, resources, "aws_sqs_queue.fanout[0]", "arn")
	assert.Equal(t, []string{"sqs:SendMessage"}, []string(sids["EnqueueFanoutBatches"].Action))
	assert.Equal(t, []string{queueARN}, []string(sids["EnqueueFanoutBatches"].Resource))
	assert.Equal(t, attr(t, resources, "aws_sqs_queue.fanout[0]", "url"), fnEnv["WS_FANOUT_QUEUE_URL"])
	for _, k := range []string{"WS_FANOUT_THRESHOLD", "WS_FANOUT_BATCH_SIZE", "WS_FANOUT_RATE_BUDGET", "WS_FANOUT_MAX_CONCURRENCY"} {
		assert.Contains(t, fnEnv, k)
	}
	assert.ElementsMatch(t, []string{
		wsExec + "/" + pusherStageName + "/POST/@connections/*",
		wsExec + "/" + pusherStageName + "/DELETE/@connections/*",
	}, []string(sids["ManageConnections"].Resource), "only the Pusher stage, not the protocol v1 API")
	assert.Equal(t, []string{"lambda:InvokeFunction"}, []string(sids["WelcomeSelfInvoke"].Action))
	assert.Equal(t, []string{pusherFunctionARN}, []string(sids["WelcomeSelfInvoke"].Resource), "the welcome step invokes only itself")
	assert.Equal(t, []string{"secretsmanager:GetSecretValue"}, []string(sids["ReadAppSecret"].Action))
	assert.Equal(t, []string{pusherSecretARN}, []string(sids["ReadAppSecret"].Resource))
	assert.Equal(t, []string{"kms:Decrypt"}, []string(sids["DecryptAppSecret"].Action))
	assert.Equal(t, map[string]map[string]stringOrSet{"StringEquals": {"kms:ViaService": {"secretsmanager.us-east-1.amazonaws.com"}}}, sids["DecryptAppSecret"].Condition,
		"the app secret's key decrypts only through Secrets Manager")
	assert.Equal(t, []string{attr(t, resources, "aws_cloudwatch_log_group.pusher[0]", "arn") + ":*"}, []string(sids["WriteOwnLogs"].Resource))
	assert.NotContains(t, sids["ConnectionTable"].Action, "dynamodb:Scan")

	// The websocket function's policy does not gain the Pusher API; the
	// publisher's gains one statement, POST on the Pusher stage, for the
	// member_removed its Cleanup announces, and the fan-out worker's one,
	// POST on the Pusher stage, for the Pusher function's batches (and the
	// member_removed of the connections it finds gone); their environments
	// name the Pusher stage's endpoint.
	pusherSid := map[string]string{"publisher": "AnnouncePusherPresence", "fanout": "DeliverPusherBatches"}
	for _, fn := range []string{"websocket", "publisher", "fanout"} {
		v1 := parsePolicy(t, values(`aws_iam_role_policy.function["` + fn + `"]`)["policy"].(string))
		for _, s := range v1.Statement {
			if s.Sid == "AnnouncePusherPresence" || s.Sid == "DeliverPusherBatches" {
				assert.Equal(t, pusherSid[fn], s.Sid, fn)
				assert.Equal(t, []string{"execute-api:ManageConnections"}, []string(s.Action))
				assert.Equal(t, []string{wsExec + "/" + pusherStageName + "/POST/@connections/*"}, []string(s.Resource), "posts only, only to the Pusher stage")
				continue
			}
			for _, res := range s.Resource {
				assert.NotContains(t, res, wsExec, fn)
			}
		}
		if sid := pusherSid[fn]; sid != "" {
			assert.Contains(t, sidsOf(v1), sid, fn)
		}
	}
	workerEnv := block(t, values(`aws_lambda_function.this["fanout"]`), "environment")["variables"].(map[string]interface{})
	assert.Equal(t, fnEnv["WS_MANAGEMENT_ENDPOINT"], workerEnv["WS_PUSHER_MANAGEMENT_ENDPOINT"], "the worker announces through the Pusher stage")
	pubDoc := parsePolicy(t, values(`aws_iam_role_policy.function["publisher"]`)["policy"].(string))
	assert.Contains(t, sidsOf(pubDoc), "AnnouncePusherPresence")
	pubEnv := block(t, values(`aws_lambda_function.this["publisher"]`), "environment")["variables"].(map[string]interface{})
	assert.Equal(t, fnEnv["WS_MANAGEMENT_ENDPOINT"], pubEnv["WS_PUSHER_MANAGEMENT_ENDPOINT"], "the publisher announces through the Pusher stage")
	assert.NotEqual(t, pubEnv["WS_MANAGEMENT_ENDPOINT"], pubEnv["WS_PUSHER_MANAGEMENT_ENDPOINT"])
	wsEnv := block(t, values(`aws_lambda_function.this["websocket"]`), "environment")["variables"].(map[string]interface{})
	assert.NotContains(t, wsEnv, "WS_PUSHER_MANAGEMENT_ENDPOINT")
}

// sidsOf lists a policy's statement ids.
func sidsOf(doc policyDocument) []string {
	var out []string
	for _, s := range doc.Statement {
		out = append(out, s.Sid)
	}
	return out
}

// TestPusherValidation: each bad pusher input fails plan with its actionable message.
func TestPusherValidation(t *testing.T) {
	t.Parallel()
	dir := copyModule(t)
	terraform.Init(t, options(t, "terraform", dir, nil))
	cases := []struct {
		name string
		p    map[string]interface{}
		want string
	}{
		{"no key", map[string]interface{}{"key": nil}, "With pusher.enabled, set pusher.app_id and pusher.key"},
		{"key with a slash", map[string]interface{}{"key": "a/b"}, "they appear in the URL paths /apps/{app_id} and /app/{key}"},
		{"no secret", map[string]interface{}{"secret_ssm_parameter": nil}, "set exactly one of pusher.secret_ssm_parameter"},
		{"two secrets", map[string]interface{}{"secret_arn": pusherSecretARN}, "set exactly one of pusher.secret_ssm_parameter"},
		{"secret arn of SSM", map[string]interface{}{"secret_ssm_parameter": nil, "secret_arn": "arn:aws:ssm:us-east-1:123456789012:parameter/x"}, "must be a complete Secrets Manager ARN"},
		{"activity timeout above API Gateway's idle timeout", map[string]interface{}{"activity_timeout": 600}, "whole number of seconds from 1 to 540"},
		{"zero presence members", map[string]interface{}{"presence_max_members": 0}, "must be whole numbers from 1 to 1000000"},
		{"client event rate of 1e20", map[string]interface{}{"client_event_rate": 1e20}, "must be whole numbers from 1 to 1000000"},
		// Each becomes an IAM Resource: a wildcard would grant every parameter,
		// secret or key it matches.
		{"secret parameter ARN with a wildcard", map[string]interface{}{"secret_ssm_parameter": "arn:aws:ssm:us-east-1:123456789012:parameter/*"}, "without wildcards or spaces: it is the Resource of the function's ssm:GetParameter"},
		{"secret parameter name with a wildcard", map[string]interface{}{"secret_ssm_parameter": "/wst/*"}, "without wildcards or spaces"},
		{"secret parameter with spaces around it", map[string]interface{}{"secret_ssm_parameter": " /wst/pusher-secret "}, "without wildcards or spaces"},
		{"secret ARN with a wildcard", map[string]interface{}{"secret_ssm_parameter": nil, "secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:*-AbCdEf"}, "must be a complete Secrets Manager ARN"},
		{"secret in another region", map[string]interface{}{"secret_ssm_parameter": nil, "secret_arn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:pusher-AbCdEf"}, "The pusher.secret_arn or secret_kms_key_arn names another region than the module's (us-east-1)"},
		{"secret key in another region", map[string]interface{}{"secret_kms_key_arn": "arn:aws:kms:eu-west-1:123456789012:key/0b7e3a52-1111-2222-3333-444455556666"}, "names another region than the module's"},
		{"secret key ARN with a wildcard", map[string]interface{}{"secret_kms_key_arn": "arn:aws:kms:us-east-1:123456789012:key/*"}, "The pusher.secret_kms_key_arn must be a KMS key ARN"},
		{"alias without certificate", map[string]interface{}{"alias": "ws.example.com"}, "Set pusher.alias and pusher.acm_certificate_arn together"},
		{"certificate outside us-east-1", map[string]interface{}{"alias": "ws.example.com", "acm_certificate_arn": "arn:aws:acm:eu-west-1:123456789012:certificate/x"}, "must be an ACM certificate in us-east-1"},
		{"bad price class", map[string]interface{}{"price_class": "PriceClass_50"}, "must be PriceClass_100"},
		{"timeout over 29s", map[string]interface{}{"timeout": 30}, "pusher.timeout a whole number from 1 to 29 seconds"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Contains(t, planRefusal(t, options(t, "terraform", dir, pusherVars(tc.p)), tc.p), tc.want)
		})
	}
}
