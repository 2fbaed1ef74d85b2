package terraform_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gruntwork-io/terratest/modules/random"
	"github.com/gruntwork-io/terratest/modules/terraform"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// configurations are the root module and every example.
var configurations = []string{".", "examples/minimal", "examples/complete", "examples/chat", "examples/laravel"}

// TestInitValidatePlanEveryConfiguration runs init, validate and plan for the
// root module and every example with both Terraform and OpenTofu against the
// real AWS provider schema, with no warnings (deprecations included).
func TestInitValidatePlanEveryConfiguration(t *testing.T) {
	t.Parallel()
	for _, tool := range []string{"terraform", "tofu"} {
		for _, cfg := range configurations {
			t.Run(tool+"/"+cfg, func(t *testing.T) {
				t.Parallel()
				dir := filepath.Join(copyModule(t), cfg)
				// validate takes no -var (Terraform 1.5), so it gets options without them.
				out := terraform.InitAndValidate(t, options(t, tool, dir, nil))
				assert.NotContains(t, out, "Warning:", "validate must be warning-free (deprecated arguments?)")

				opts := withPlanFile(t, options(t, tool, dir, map[string]interface{}{"name": "wst-" + strings.ToLower(random.UniqueId())}))
				plan := terraform.InitAndPlanAndShowWithStruct(t, opts)
				require.NotEmpty(t, plan.ResourceChangesMap)
				for addr, rc := range plan.ResourceChangesMap {
					assert.Truef(t, rc.Change.Actions.Create(), "%s: a fresh plan only creates, got %v", addr, rc.Change.Actions)
				}
				prefix := ""
				if cfg != "." {
					prefix = "module.websocket."
				}
				for _, addr := range []string{"aws_apigatewayv2_api.this", "aws_apigatewayv2_stage.this", "aws_dynamodb_table.this", `aws_lambda_function.this["websocket"]`, `aws_lambda_function.this["publisher"]`} {
					assert.Containsf(t, plan.ResourceChangesMap, prefix+addr, "%s plans %s", cfg, prefix+addr)
				}
				// examples/laravel is the one in Pusher mode.
				_, pusher := plan.ResourceChangesMap[prefix+"aws_cloudfront_distribution.pusher[0]"]
				assert.Equalf(t, cfg == "examples/laravel", pusher, "%s plans the Pusher distribution: %v", cfg, pusher)
				// examples/complete turns distributed fan-out on; the others leave it off.
				for _, addr := range []string{"aws_sqs_queue.fanout[0]", "aws_sqs_queue.fanout_dlq[0]", "aws_lambda_event_source_mapping.fanout[0]", `aws_lambda_function.this["fanout"]`} {
					_, ok := plan.ResourceChangesMap[prefix+addr]
					assert.Equalf(t, cfg == "examples/complete", ok, "%s plans %s: %v", cfg, prefix+addr, ok)
				}
			})
		}
	}
}

// TestValidateRejectsMisspelledArgument proves the schema-replay provider
// checks arguments: a typo in the module fails validate with both tools.
func TestValidateRejectsMisspelledArgument(t *testing.T) {
	t.Parallel()
	for _, tool := range []string{"terraform", "tofu"} {
		t.Run(tool, func(t *testing.T) {
			t.Parallel()
			dir := copyModule(t)
			api := filepath.Join(dir, "api.tf")
			body, err := os.ReadFile(api)
			require.NoError(t, err)
			require.Contains(t, string(body), "route_selection_expression =")
			typo := strings.Replace(string(body), "route_selection_expression =", "route_selection_expresion =", 1)
			require.NoError(t, os.WriteFile(api, []byte(typo), 0o644))

			out, err := terraform.InitAndValidateE(t, options(t, tool, dir, nil))
			require.Error(t, err)
			assert.Contains(t, out, `An argument named "route_selection_expresion" is not expected here`)
		})
	}
}

// TestValidateRejectsUnknownBlock: a block the resource does not have fails too.
func TestValidateRejectsUnknownBlock(t *testing.T) {
	t.Parallel()
	dir := copyModule(t)
	extra := `resource "aws_dynamodb_table" "typo" {
  name     = "typo"
  hash_key = "pk"
  attribute {
    name = "pk"
    type = "S"
  }
  time_to_live {
    attribute_name = "ttl"
  }
}
`
	require.NoError(t, os.WriteFile(filepath.Join(dir, "zz_typo.tf"), []byte(extra), 0o644))
	out, err := terraform.InitAndValidateE(t, options(t, "terraform", dir, nil))
	require.Error(t, err)
	assert.Contains(t, out, `Blocks of type "time_to_live" are not expected here`)
}
