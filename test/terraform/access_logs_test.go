package terraform_test

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/gruntwork-io/terratest/modules/terraform"
	tfjson "github.com/hashicorp/terraform-json"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAPIGatewayCloudWatchRoleIsOptIn: by default the module keeps access logs
// on and never touches API Gateway's account settings (no account resource, no
// extra role). With create_api_gateway_cloudwatch_role it creates a role only
// API Gateway may assume, allowed exactly the seven CloudWatch Logs actions API
// Gateway uses (no action wildcard) on this account's log groups in this
// region, points aws_api_gateway_account at it after the policy exists, and
// the stage waits for that setting. The variable's description warns that the
// setting is account-wide.
func TestAPIGatewayCloudWatchRoleIsOptIn(t *testing.T) {
	t.Parallel()

	t.Run("off by default", func(t *testing.T) {
		t.Parallel()
		plan := planModule(t, map[string]interface{}{"name": "wst-logs-default"})
		assert.Empty(t, resourcesOfType(plan, "aws_api_gateway_account"), "no account settings by default")
		assert.NotContains(t, plan.ResourcePlannedValuesMap, "aws_iam_role.api_gateway_cloudwatch[0]")
		assert.NotContains(t, plan.ResourcePlannedValuesMap, "aws_iam_role_policy.api_gateway_cloudwatch[0]")
		assert.NotEmpty(t, planned(t, plan, "aws_apigatewayv2_stage.this")["access_log_settings"], "access logs stay on by default")
		desc := plan.RawPlan.Config.RootModule.Variables["create_api_gateway_cloudwatch_role"].Description
		assert.Contains(t, desc, "WARNING: changes an account-wide, region-wide setting")
		// What a destroy does, next to the variable, and where the role belongs.
		assert.Contains(t, desc, "DESTROY: destroying this module (or turning this off) deletes the role")
		assert.Contains(t, desc, "with hashicorp/aws v5")
		assert.Contains(t, desc, "with v6 the setting is reset to none for every API of the region")
		assert.Contains(t, desc, "Recommended: manage this role and `aws_api_gateway_account` once per account and region")
		assert.Contains(t, desc, "long-lived stack of its own (account baseline), not in per-API stacks")
		assert.Equal(t, false, plan.RawPlan.Config.RootModule.Variables["create_api_gateway_cloudwatch_role"].Default)
	})

	t.Run("on", func(t *testing.T) {
		t.Parallel()
		vars := map[string]interface{}{
			"name":                               "wst-logs-role",
			"create_api_gateway_cloudwatch_role": true,
			"lambda_artifacts":                   writeFakeZips(t, "websocket", "publisher"),
		}
		opts := options(t, "terraform", copyModule(t), vars)
		terraform.Init(t, opts)
		plan := planShow(t, withPlanFile(t, withVars(opts, nil)))
		assert.Contains(t, configOf(t, plan, "aws_apigatewayv2_stage.this").DependsOn, "aws_api_gateway_account.this", "the stage waits for the account's role")
		assert.Contains(t, configOf(t, plan, "aws_api_gateway_account.this").DependsOn, "aws_iam_role_policy.api_gateway_cloudwatch", "the role has its permissions before API Gateway checks it")

		terraform.Apply(t, opts)
		raw := terraform.Show(t, opts)
		var st tfjson.State
		require.NoError(t, json.Unmarshal([]byte(raw), &st))
		resources := stateResources(st.Values.RootModule)

		roleARN := attr(t, resources, "aws_iam_role.api_gateway_cloudwatch[0]", "arn")
		assert.Equal(t, roleARN, attr(t, resources, "aws_api_gateway_account.this[0]", "cloudwatch_role_arn"))
		assert.Equal(t, "wst-logs-role-apigateway-logs-us-east-1", attr(t, resources, "aws_iam_role.api_gateway_cloudwatch[0]", "name"))

		var trust struct {
			Statement []struct {
				Effect    string
				Action    string
				Principal map[string]string
				Condition map[string]interface{}
			}
		}
		require.NoError(t, json.Unmarshal([]byte(attr(t, resources, "aws_iam_role.api_gateway_cloudwatch[0]", "assume_role_policy")), &trust))
		require.Len(t, trust.Statement, 1)
		assert.Equal(t, "Allow", trust.Statement[0].Effect)
		assert.Equal(t, "sts:AssumeRole", trust.Statement[0].Action)
		assert.Equal(t, map[string]string{"Service": "apigateway.amazonaws.com"}, trust.Statement[0].Principal, "only API Gateway may assume it")

		doc := parsePolicy(t, attr(t, resources, "aws_iam_role_policy.api_gateway_cloudwatch[0]", "policy"))
		require.Len(t, doc.Statement, 1)
		s := doc.Statement[0]
		assert.Equal(t, "Allow", s.Effect)
		assert.ElementsMatch(t, []string{
			"logs:CreateLogGroup", "logs:CreateLogStream", "logs:DescribeLogGroups", "logs:DescribeLogStreams",
			"logs:PutLogEvents", "logs:GetLogEvents", "logs:FilterLogEvents",
		}, []string(s.Action), "the actions of AmazonAPIGatewayPushToCloudWatchLogs, named")
		for _, a := range s.Action {
			assert.NotContains(t, a, "*", "no action wildcard")
		}
		assert.Equal(t, []string{"arn:aws:logs:us-east-1:123456789012:log-group:*"}, []string(s.Resource), "this account's log groups in this region, not *")

		policies := 0
		for _, r := range resources {
			if r.Type == "aws_iam_role_policy_attachment" {
				assert.Failf(t, "managed policy attached", "%s: the role has only its inline policy", r.Address)
			}
			if r.Type == "aws_iam_role_policy" {
				policies++
			}
		}
		assert.Equal(t, 4, policies, "three functions (websocket, publisher, deployer) and API Gateway's role")
	})
}

// TestExamplesApplyWithoutAccountSettings: every example turns access logs
// off by default (a fresh account has no API Gateway CloudWatch role, and an
// example must not set that account-wide setting; examples/complete used to
// keep them on, so the README's headline apply failed in a fresh account),
// turns them on with -var access_logs_enabled=true, and none of the examples
// manages the account settings.
func TestExamplesApplyWithoutAccountSettings(t *testing.T) {
	t.Parallel()
	for _, cfg := range []string{"examples/minimal", "examples/chat", "examples/complete", "examples/laravel"} {
		t.Run(cfg, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(copyModule(t), cfg)
			plan := terraform.InitAndPlanAndShowWithStruct(t, withPlanFile(t, options(t, "terraform", dir, map[string]interface{}{"name": "wst-example-logs"})))
			for addr := range plan.ResourcePlannedValuesMap {
				assert.NotContains(t, addr, "aws_api_gateway_account", "examples never change account settings")
			}
			stage := planned(t, plan, "module.websocket.aws_apigatewayv2_stage.this")
			_, hasGroup := plan.ResourcePlannedValuesMap["module.websocket.aws_cloudwatch_log_group.access[0]"]
			assert.Empty(t, stage["access_log_settings"], "%s applies in a fresh account: no access logs by default", cfg)
			assert.False(t, hasGroup, "no access log group")

			on := withPlanFile(t, options(t, "terraform", dir, map[string]interface{}{"name": "wst-example-logs", "access_logs_enabled": true}))
			plan = planShow(t, on)
			assert.NotEmpty(t, planned(t, plan, "module.websocket.aws_apigatewayv2_stage.this")["access_log_settings"], "-var access_logs_enabled=true turns them on")
		})
	}
}

// configOf returns the configuration of a root module resource in a plan.
func configOf(t *testing.T, plan *terraform.PlanStruct, address string) *tfjson.ConfigResource {
	t.Helper()
	return plan.RawPlan.Config.RootModule.Resources[indexOfConfig(t, plan, address)]
}
