package terraform_test

import (
	"archive/zip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gruntwork-io/terratest/modules/terraform"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBuildRunsAtApplyOnlyAndTracksSourceContents: plan compiles nothing;
// apply runs the real packager (go run ./tools/package) and produces zips
// holding only bootstrap; a second plan is empty; touching a source file
// (timestamp only) changes nothing; changing its contents rebuilds and
// redeploys the functions. Distributed fan-out is on, so the worker
// (lambda/cmd/fanout) is built too.
func TestBuildRunsAtApplyOnlyAndTracksSourceContents(t *testing.T) {
	t.Parallel()
	dir := copyModule(t)
	opts := options(t, "terraform", dir, map[string]interface{}{
		"name":                     "wst-build",
		"cleanup_schedule_minutes": 0,
		"distributed_fanout":       map[string]interface{}{"enabled": true},
	})
	buildDir := filepath.Join(dir, ".terraform", "websocket-lambdas", "wst-build")

	terraform.InitAndPlan(t, opts)
	assert.NoDirExists(t, buildDir, "plan must not build anything")

	terraform.Apply(t, opts)
	for _, fn := range []string{"websocket", "publisher", "fanout"} {
		zr, err := zip.OpenReader(filepath.Join(buildDir, fn+".zip"))
		require.NoError(t, err, "apply builds %s.zip", fn)
		names := []string{}
		for _, f := range zr.File {
			names = append(names, f.Name)
		}
		require.NoError(t, zr.Close())
		assert.Equal(t, []string{"bootstrap"}, names, "%s.zip holds only bootstrap", fn)
	}

	assert.Equal(t, 0, terraform.PlanExitCode(t, opts), "a second plan is empty")

	source := filepath.Join(dir, "lambda", "store", "store.go")
	later := time.Now().Add(time.Hour)
	require.NoError(t, os.Chtimes(source, later, later))
	assert.Equal(t, 0, terraform.PlanExitCode(t, opts), "a newer timestamp alone triggers nothing")

	f, err := os.OpenFile(source, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString("\n// a change of contents\n")
	require.NoError(t, err)
	require.NoError(t, f.Close())
	plan := terraform.InitAndPlanAndShowWithStruct(t, withPlanFile(t, opts))
	assert.True(t, plan.ResourceChangesMap["terraform_data.build[0]"].Change.Actions.Replace(), "changed sources rebuild")
	for _, fn := range []string{"websocket", "publisher", "fanout"} {
		rc := plan.ResourceChangesMap[`aws_lambda_function.this["`+fn+`"]`]
		require.NotNil(t, rc)
		assert.True(t, rc.Change.Actions.Update(), "%s is redeployed", fn)
	}
}
