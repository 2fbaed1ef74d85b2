package terraform_test

import (
	"crypto/sha1"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// nameLimits are AWS's length limits of the name-like attributes the module
// derives from var.name, by resource type and attribute.
var nameLimits = map[string]struct{ min, max int }{
	"aws_dynamodb_table.name":              {3, 255},
	"aws_apigatewayv2_api.name":            {1, 128},
	"aws_apigatewayv2_authorizer.name":     {1, 128},
	"aws_lambda_function.function_name":    {1, 64},
	"aws_lambda_permission.statement_id":   {1, 100},
	"aws_lambda_permission.function_name":  {1, 140},
	"aws_iam_role.name":                    {1, 64},
	"aws_iam_role_policy.name":             {1, 128},
	"aws_cloudwatch_log_group.name":        {1, 512},
	"aws_sqs_queue.name":                   {1, 80},
	"aws_cloudwatch_event_rule.name":       {1, 64},
	"aws_cloudwatch_event_bus.name":        {1, 256},
	"aws_cloudwatch_event_target.rule":     {1, 64},
	"aws_lambda_event_source_mapping.name": {1, 64},
	"aws_lambda_invocation.function_name":  {1, 64},
	// Pusher mode.
	"aws_lambda_function_event_invoke_config.function_name": {1, 140},
	"aws_cloudfront_function.name":                          {1, 64},
	"aws_cloudfront_origin_request_policy.name":             {1, 128},
	"aws_cloudwatch_dashboard.dashboard_name":               {1, 255},
}

// TestLongestNameFitsEveryDerivedName plans the longest accepted name (40
// characters) and the shortest (3) with every option that adds a named
// resource on (JWT authorizer, custom route of a user function, events on a
// new bus, cleanup schedule, distributed fan-out, API Gateway's CloudWatch
// role, Pusher mode), and checks every name-like attribute that contains the name against
// AWS's limit for it; an attribute without a known limit fails the test, so a
// new named resource must be added to nameLimits.
func TestLongestNameFitsEveryDerivedName(t *testing.T) {
	t.Parallel()
	for _, name := range []string{strings.Repeat("n", 40), "n-3"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			plan := planModule(t, map[string]interface{}{
				"name":                               name,
				"authorizer":                         map[string]interface{}{"mode": "jwt", "jwt": map[string]interface{}{"public_key": fakePublicKey}},
				"routes":                             map[string]interface{}{"orders": map[string]interface{}{"handler": "lambda", "function_arn": userFunctionARN}},
				"event_bus":                          map[string]interface{}{"create": true},
				"distributed_fanout":                 map[string]interface{}{"enabled": true},
				"create_api_gateway_cloudwatch_role": true,
				"pusher":                             pusherVars(nil)["pusher"],
			})
			checked := map[string]bool{}
			for addr, r := range plan.ResourcePlannedValuesMap {
				for _, key := range []string{"name", "function_name", "statement_id", "rule", "dashboard_name"} {
					v, ok := r.AttributeValues[key].(string)
					if !ok || !strings.Contains(v, name) {
						continue
					}
					limit, known := nameLimits[r.Type+"."+key]
					require.Truef(t, known, "%s.%s = %q is derived from name but has no length limit in nameLimits", addr, key, v)
					assert.GreaterOrEqualf(t, len(v), limit.min, "%s.%s = %q", addr, key, v)
					assert.LessOrEqualf(t, len(v), limit.max, "%s.%s = %q (%d characters) exceeds AWS's limit of %d", addr, key, v, len(v), limit.max)
					checked[r.Type+"."+key] = true
				}
			}
			for _, want := range []string{
				"aws_dynamodb_table.name", "aws_lambda_function.function_name", "aws_iam_role.name",
				"aws_sqs_queue.name", "aws_cloudwatch_event_rule.name", "aws_cloudwatch_event_bus.name",
				"aws_lambda_permission.statement_id", "aws_cloudwatch_log_group.name",
				"aws_cloudfront_function.name", "aws_cloudfront_origin_request_policy.name",
				"aws_cloudwatch_dashboard.dashboard_name",
			} {
				assert.Truef(t, checked[want], "%s was checked (is the option that creates it still on?)", want)
			}
			assert.Equal(t, name+"-authorizer", planned(t, plan, `aws_lambda_function.this["authorizer"]`)["function_name"])
			assert.Equal(t, name+"-fanout-dlq", planned(t, plan, "aws_sqs_queue.fanout_dlq[0]")["name"])
		})
	}
}

// TestRoleNamesIncludeTheRegion: IAM role names are global to the account,
// so they carry the region (the same name in two regions of one account must
// not collide); a name that would pass IAM's 64 characters (the API Gateway
// logs role of a 40-character name) is shortened to 64 with a hash of the
// full base name and still ends with the region. So do the other names that
// are global to the account: Pusher mode's CloudFront Function and origin
// request policy, and the CloudWatch dashboard.
func TestRoleNamesIncludeTheRegion(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"wst-roles", strings.Repeat("r", 40)} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			plan := planModule(t, map[string]interface{}{
				"name":                               name,
				"authorizer":                         map[string]interface{}{"mode": "jwt", "jwt": map[string]interface{}{"public_key": fakePublicKey}},
				"distributed_fanout":                 map[string]interface{}{"enabled": true},
				"create_api_gateway_cloudwatch_role": true,
				"pusher":                             pusherVars(nil)["pusher"],
			})
			seen := map[string]string{}
			for _, fn := range []string{"websocket", "publisher", "authorizer", "fanout", "deployer"} {
				role := planned(t, plan, `aws_iam_role.function["`+fn+`"]`)["name"].(string)
				assert.Equal(t, name+"-"+fn+"-us-east-1", role, "<name>-<function>-<region>")
				seen[role] = fn
			}
			logs := planned(t, plan, "aws_iam_role.api_gateway_cloudwatch[0]")["name"].(string)
			assert.LessOrEqual(t, len(logs), 64, logs)
			assert.True(t, strings.HasSuffix(logs, "-us-east-1"), "%s ends with the region", logs)
			base := name + "-apigateway-logs"
			if len(base+"-us-east-1") <= 64 {
				assert.Equal(t, base+"-us-east-1", logs)
			} else {
				sum := sha1.Sum([]byte(base))
				assert.Equal(t, base[:64-10-len("us-east-1")]+"-"+hex.EncodeToString(sum[:])[:8]+"-us-east-1", logs, "shortened with a hash of the full name")
				assert.Len(t, logs, 64)
			}
			seen[logs] = "apigateway-logs"
			pusherRole := planned(t, plan, "aws_iam_role.pusher[0]")["name"].(string)
			assert.Equal(t, name+"-pusher-us-east-1", pusherRole)
			seen[pusherRole] = "pusher"
			assert.Len(t, seen, 7, "every role name is distinct")

			for addr, base := range map[string]string{
				"aws_cloudfront_function.pusher[0]":                        name + "-pusher-rewrite",
				"aws_cloudfront_origin_request_policy.pusher_websocket[0]": name + "-pusher-websocket",
			} {
				got := planned(t, plan, addr)["name"].(string)
				assert.LessOrEqual(t, len(got), 64, got)
				if len(base+"-us-east-1") <= 64 {
					assert.Equal(t, base+"-us-east-1", got, "%s: global to the account, so <name>-<suffix>-<region>", addr)
				} else {
					assert.True(t, strings.HasSuffix(got, "-us-east-1") && strings.HasPrefix(got, base[:20]), "%s = %s", addr, got)
				}
			}
			assert.Equal(t, name+"-us-east-1", planned(t, plan, "aws_cloudwatch_dashboard.this[0]")["dashboard_name"], "dashboards are global to the account")
		})
	}
}
