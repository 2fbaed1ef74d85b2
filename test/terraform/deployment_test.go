package terraform_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gruntwork-io/terratest/modules/terraform"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	redeploy   = "aws_lambda_invocation.redeploy"
	routeSet   = "terraform_data.route_set"
	deployment = "aws_apigatewayv2_deployment.this"
	stage      = "aws_apigatewayv2_stage.this"
)

// TestRemovedRouteIsUndeployedInOneApply proves the order docs/module.md
// ("Removing a route") relies on: the deployer's invocation (CreateDeployment
// with stageName) runs after a removed route and its route response are
// destroyed, and after an added route is created, in the same apply; the
// plan after each apply is empty. Before the deployer, the deployment was
// create_before_destroy and made before the removed route was destroyed, so
// the stage kept serving it until a second deployment.
//
// Applied with the schema-replay provider, one operation at a time so the
// log is in apply order (the order itself comes from the dependency graph).
func TestRemovedRouteIsUndeployedInOneApply(t *testing.T) {
	t.Parallel()
	for _, tool := range []string{"terraform", "tofu"} {
		t.Run(tool, func(t *testing.T) {
			t.Parallel()
			base := options(t, tool, copyModule(t), map[string]interface{}{
				"name":             "wst-route-removal",
				"lambda_artifacts": writeFakeZips(t, "websocket", "publisher"),
				"routes":           map[string]interface{}{"orders": map[string]interface{}{"handler": "lambda", "function_arn": userFunctionARN}},
			})
			base.Parallelism = 1
			out := terraform.InitAndApply(t, base)
			assertBefore(t, out, `aws_apigatewayv2_route.this["orders"]: Creation complete`, redeploy+": Creation complete", "the first apply deploys the route")

			// The route response goes first: two_way off.
			oneWay := withVars(base, map[string]interface{}{
				"routes": map[string]interface{}{"orders": map[string]interface{}{"handler": "lambda", "function_arn": userFunctionARN, "two_way": false}},
			})
			out = terraform.Apply(t, oneWay)
			assertBefore(t, out, `aws_apigatewayv2_route_response.this["orders"]: Destruction complete`, routeSet+": Destruction complete", "the route response is gone before the route set marker is replaced")
			assertBefore(t, out, `aws_apigatewayv2_route_response.this["orders"]: Destruction complete`, redeploy+": Creation complete", "and before the redeploy")
			assertBefore(t, out, `aws_apigatewayv2_route.this["orders"]: Modifications complete`, redeploy+": Creation complete", "the changed route is deployed")
			assertUntouched(t, out)
			assert.Equal(t, 0, terraform.PlanExitCode(t, oneWay), "the plan after removing a route response is empty")

			// Then the route: removed and another one added in one apply.
			swapped := withVars(base, map[string]interface{}{
				"routes": map[string]interface{}{"chat": map[string]interface{}{"handler": "lambda", "function_arn": userFunctionARN}},
			})
			out = terraform.Apply(t, swapped)
			assertBefore(t, out, `aws_apigatewayv2_route.this["orders"]: Destruction complete`, routeSet+": Destruction complete", "the removed route is gone before the route set marker is replaced")
			assertBefore(t, out, routeSet+": Creation complete", redeploy+": Creation complete", "the redeploy follows the new marker")
			assertBefore(t, out, `aws_apigatewayv2_route.this["orders"]: Destruction complete`, redeploy+": Creation complete", "so CreateDeployment runs once the removed route is gone")
			assertBefore(t, out, `aws_apigatewayv2_integration.this["route:orders"]: Destruction complete`, redeploy+": Creation complete", "and its integration")
			assertBefore(t, out, `aws_apigatewayv2_route.this["chat"]: Creation complete`, redeploy+": Creation complete", "and once the added route exists")
			assertBefore(t, out, `aws_apigatewayv2_route_response.this["chat"]: Creation complete`, redeploy+": Creation complete", "with its route response")
			assertUntouched(t, out)
			assert.Equal(t, 0, terraform.PlanExitCode(t, swapped), "the plan after removing a route is empty: nothing is left for a second apply")

			// No route change, no deployment.
			logLevel := withVars(swapped, map[string]interface{}{"log_level": "debug"})
			out = terraform.Apply(t, logLevel)
			assert.False(t, applied(out, redeploy), "a change that leaves the routes alone does not redeploy:\n%s", out)

			// A replaced stage (a new stage_name: the name forces a new
			// stage) starts on the first deployment, which lacks the later
			// routes: it is moved onto a new one in the same apply.
			out = terraform.RunTerraformCommand(t, logLevel, terraform.FormatArgs(logLevel, "apply", "-input=false", "-auto-approve", "-replace="+stage)...)
			assertBefore(t, out, stage+": Creation complete", redeploy+": Creation complete", "a replaced stage is redeployed at once")
		})
	}
}

// TestUpgradeKeepsTheDeploymentAndStage applies the module as it was before
// the deployer (testdata/api-before-deployer.tf.txt is that api.tf: a
// create_before_destroy deployment with a triggers hash, the stage pointing
// at it) and plans the current one over its state: the deployment and the
// stage are neither replaced nor changed, only the marker and the redeploy
// are new. After that upgrade, removing a route takes one apply.
func TestUpgradeKeepsTheDeploymentAndStage(t *testing.T) {
	t.Parallel()
	for _, tool := range []string{"terraform", "tofu"} {
		t.Run(tool, func(t *testing.T) {
			t.Parallel()
			dir := copyModule(t)
			current, err := os.ReadFile(filepath.Join(dir, "api.tf"))
			require.NoError(t, err)
			before, err := os.ReadFile(filepath.Join("testdata", "api-before-deployer.tf.txt"))
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join(dir, "api.tf"), before, 0o644))

			opts := options(t, tool, dir, map[string]interface{}{
				"name":             "wst-upgrade",
				"lambda_artifacts": writeFakeZips(t, "websocket", "publisher"),
				"routes":           map[string]interface{}{"orders": map[string]interface{}{"handler": "lambda", "function_arn": userFunctionARN}},
			})
			opts.Parallelism = 1
			terraform.InitAndApply(t, opts)

			require.NoError(t, os.WriteFile(filepath.Join(dir, "api.tf"), current, 0o644))
			plan := planShow(t, withPlanFile(t, withVars(opts, nil)))
			for _, addr := range []string{deployment, stage} {
				rc := plan.ResourceChangesMap[addr]
				require.NotNil(t, rc, addr)
				assert.True(t, rc.Change.Actions.NoOp(), "%s: %v on upgrade", addr, rc.Change.Actions)
			}
			for addr, rc := range plan.ResourceChangesMap {
				if rc.Change.Actions.NoOp() || rc.Change.Actions.Read() {
					continue
				}
				assert.Contains(t, []string{routeSet, redeploy}, addr, "%s: %v on upgrade (only the marker and the redeploy are new)", addr, rc.Change.Actions)
				assert.True(t, rc.Change.Actions.Create(), "%s: %v", addr, rc.Change.Actions)
			}

			terraform.Apply(t, opts)
			without := withVars(opts, map[string]interface{}{"routes": map[string]interface{}{}})
			out := terraform.Apply(t, without)
			assertBefore(t, out, `aws_apigatewayv2_route.this["orders"]: Destruction complete`, redeploy+": Creation complete", "after the upgrade a removed route is undeployed in one apply")
			assertUntouched(t, out)
			assert.Equal(t, 0, terraform.PlanExitCode(t, without))
		})
	}
}

// assertBefore checks that the apply log out has a line with first before a
// line with then.
func assertBefore(t *testing.T, out, first, then, msg string) {
	t.Helper()
	assert.Less(t, logLine(t, out, first), logLine(t, out, then), "%s: %q comes before %q in:\n%s", msg, first, then, out)
}

// assertUntouched checks that an apply left the first deployment and the
// stage alone: the deployer moves the stage, not Terraform.
func assertUntouched(t *testing.T, out string) {
	t.Helper()
	for _, addr := range []string{deployment, stage} {
		assert.False(t, applied(out, addr), "%s is not changed:\n%s", addr, out)
	}
}

// applied reports whether the apply log out creates, changes or destroys addr.
func applied(out, addr string) bool {
	for _, op := range []string{": Creating...", ": Modifying...", ": Destroying..."} {
		if strings.Contains(out, addr+op) {
			return true
		}
	}
	return false
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
