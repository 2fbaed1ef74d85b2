package terraform_test

import (
	"strings"
	"testing"

	"github.com/gruntwork-io/terratest/modules/terraform"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRemovedRouteNeedsASecondDeployment pins down the order Terraform
// applies a route removal in, which docs/module.md ("Removing a route")
// relies on. The deployment is create_before_destroy (the stage cannot leave
// a deployment it still uses), and Terraform forces that onto everything the
// deployment depends on, routes included; a forced route is destroyed only
// after the new deployment exists and the stage points at it. So the
// deployment made in the apply that removes a route still holds the route.
// The documented second step, `-replace` of the deployment, snapshots the
// API once the route is gone, and the plan after it is empty.
//
// Applied with the schema-replay provider, one operation at a time so the
// log is in apply order (the order itself comes from the dependency graph).
func TestRemovedRouteNeedsASecondDeployment(t *testing.T) {
	t.Parallel()
	const route = `aws_apigatewayv2_route.this["orders"]`
	const deployment = "aws_apigatewayv2_deployment.this"
	base := options(t, "terraform", copyModule(t), map[string]interface{}{
		"name":             "wst-route-removal",
		"lambda_artifacts": writeFakeZips(t, "websocket", "publisher"),
		"routes":           map[string]interface{}{"orders": map[string]interface{}{"handler": "lambda", "function_arn": userFunctionARN}},
	})
	base.Parallelism = 1
	terraform.InitAndApply(t, base)

	without := withVars(base, map[string]interface{}{"routes": map[string]interface{}{}})
	out := terraform.Apply(t, without)
	created := logLine(t, out, deployment+": Creation complete")
	repointed := logLine(t, out, "aws_apigatewayv2_stage.this: Modifications complete")
	routeGone := logLine(t, out, route+": Destruction complete")
	assert.Less(t, created, repointed, "the stage moves to the new deployment")
	assert.Less(t, repointed, routeGone, "the route is destroyed only after the stage serves a deployment made while it existed:\n%s", out)
	assert.Equal(t, 0, terraform.PlanExitCode(t, without), "and Terraform sees nothing left to do")

	// The documented fix: one more deployment, now that the route is gone.
	out = terraform.RunTerraformCommand(t, without, terraform.FormatArgs(without, "apply", "-input=false", "-auto-approve", "-replace="+deployment)...)
	logLine(t, out, deployment+": Creation complete")
	assert.NotContains(t, out, route, "the route no longer exists when the replacement deployment is made")
	assert.Equal(t, 0, terraform.PlanExitCode(t, without))
}

// logLine returns the index of the first line of out that contains s.
func logLine(t *testing.T, out, s string) int {
	t.Helper()
	for i, line := range strings.Split(out, "\n") {
		if strings.Contains(line, s) {
			return i
		}
	}
	require.FailNowf(t, "not in the apply log", "%q", s)
	return -1
}
