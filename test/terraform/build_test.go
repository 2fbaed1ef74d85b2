package terraform_test

import (
	"archive/zip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gruntwork-io/terratest/modules/terraform"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// functionsBuilt are the functions of the build tests' configuration
// (distributed fan-out on, so the worker is built too; the deployer always).
var functionsBuilt = []string{"websocket", "publisher", "deployer", "fanout"}

// TestBuildRunsAtApplyOnlyAndTracksSourceContents: plan compiles nothing;
// apply runs the real packager (go run ./tools/package) through go_command,
// and the packager compiles with that same binary (GO); the zips hold only
// bootstrap; a second plan is empty; a deleted zip reruns the build (and
// redeploys nothing), after which the plan is empty again; a new build_dir
// reruns the build into it and points the functions at it; touching a source
// file (timestamp only) changes nothing; changing its contents rebuilds and
// redeploys the functions. Distributed fan-out is on, so the worker
// (lambda/cmd/fanout) is built too.
func TestBuildRunsAtApplyOnlyAndTracksSourceContents(t *testing.T) {
	t.Parallel()
	dir := copyModule(t)
	goCommand, goLog := loggingGo(t)
	opts := options(t, "terraform", dir, map[string]interface{}{
		"name":                     "wst-build",
		"cleanup_schedule_minutes": 0,
		"distributed_fanout":       map[string]interface{}{"enabled": true},
		"go_command":               goCommand,
	})
	buildDir := filepath.Join(dir, ".terraform", "websocket-lambdas", "wst-build")
	// A Go workspace of a monorepo that does not list the module: the
	// packager runs in the module alone (GOWORK=off), or go run refuses
	// tools/package as outside the workspace.
	ws := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(ws, "other"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(ws, "other", "go.mod"), []byte("module example.com/other\n\ngo 1.26.0\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(ws, "go.work"), []byte("go 1.26.0\n\nuse ./other\n"), 0o644))
	opts.EnvVars["GOWORK"] = filepath.Join(ws, "go.work")

	terraform.InitAndPlan(t, opts)
	assert.NoDirExists(t, buildDir, "plan must not build anything")

	terraform.Apply(t, opts)
	requireZips(t, buildDir)
	calls := goCalls(t, goLog)
	assert.Contains(t, calls, "run ./tools/package -out "+buildDir+" -arch arm64 websocket publisher deployer fanout", "the module runs the packager with go_command")
	builds := 0
	for _, c := range calls {
		if strings.HasPrefix(c, "build -trimpath") {
			builds++
		}
	}
	assert.Equal(t, len(functionsBuilt), builds, "the packager compiles each function with go_command (GO), not go from PATH: %v", calls)

	assert.Equal(t, 0, terraform.PlanExitCode(t, opts), "a second plan is empty")

	// A missing zip (a clean CI workspace) reruns the build; nothing else
	// changes, so no function is redeployed.
	require.NoError(t, os.Remove(filepath.Join(buildDir, "publisher.zip")))
	plan := planShow(t, withPlanFile(t, withVars(opts, nil)))
	assert.True(t, plan.ResourceChangesMap["terraform_data.build[0]"].Change.Actions.Replace(), "a missing zip rebuilds")
	for _, fn := range functionsBuilt {
		rc := plan.ResourceChangesMap[`aws_lambda_function.this["`+fn+`"]`]
		require.NotNil(t, rc)
		assert.True(t, rc.Change.Actions.NoOp(), "%s: same sources, nothing to redeploy: %v", fn, rc.Change.Actions)
	}
	terraform.Apply(t, opts)
	requireZips(t, buildDir)
	assert.Equal(t, 0, terraform.PlanExitCode(t, opts), "the plan after the rebuild is empty")

	// A new output folder (build_dir, or name in the default one) rebuilds
	// into it before the functions read their zips from there.
	otherDir := filepath.Join(dir, "other-build")
	moved := withVars(opts, map[string]interface{}{"build_dir": otherDir})
	plan = planShow(t, withPlanFile(t, withVars(moved, nil)))
	assert.True(t, plan.ResourceChangesMap["terraform_data.build[0]"].Change.Actions.Replace(), "a new build_dir rebuilds")
	for _, fn := range functionsBuilt {
		rc := plan.ResourceChangesMap[`aws_lambda_function.this["`+fn+`"]`]
		require.NotNil(t, rc)
		assert.True(t, rc.Change.Actions.Update(), "%s now reads its zip from the new folder", fn)
	}
	terraform.Apply(t, moved)
	requireZips(t, otherDir)
	assert.Equal(t, 0, terraform.PlanExitCode(t, moved), "the plan after building into the new folder is empty")
	opts = moved

	source := filepath.Join(dir, "lambda", "store", "store.go")
	later := time.Now().Add(time.Hour)
	require.NoError(t, os.Chtimes(source, later, later))
	assert.Equal(t, 0, terraform.PlanExitCode(t, opts), "a newer timestamp alone triggers nothing")

	f, err := os.OpenFile(source, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString("\n// a change of contents\n")
	require.NoError(t, err)
	require.NoError(t, f.Close())
	plan = planShow(t, withPlanFile(t, opts))
	assert.True(t, plan.ResourceChangesMap["terraform_data.build[0]"].Change.Actions.Replace(), "changed sources rebuild")
	for _, fn := range functionsBuilt {
		rc := plan.ResourceChangesMap[`aws_lambda_function.this["`+fn+`"]`]
		require.NotNil(t, rc)
		assert.True(t, rc.Change.Actions.Update(), "%s is redeployed", fn)
	}
}

// requireZips checks that dir holds a zip with only bootstrap per function.
func requireZips(t *testing.T, dir string) {
	t.Helper()
	for _, fn := range functionsBuilt {
		zr, err := zip.OpenReader(filepath.Join(dir, fn+".zip"))
		require.NoError(t, err, "apply builds %s.zip in %s", fn, dir)
		names := []string{}
		for _, f := range zr.File {
			names = append(names, f.Name)
		}
		require.NoError(t, zr.Close())
		assert.Equal(t, []string{"bootstrap"}, names, "%s.zip holds only bootstrap", fn)
	}
}

// loggingGo writes a go_command that logs its arguments (one call per line)
// and runs the real go, and returns it with its log file. Its folder's name
// has a space, as a user's path may ("/Users/Jane Doe/sdk/go/bin/go"): the
// build must pass it to the shell as one word.
func loggingGo(t *testing.T) (string, string) {
	t.Helper()
	realGo, err := exec.LookPath("go")
	require.NoError(t, err, "the build tests need go on PATH")
	tmp := filepath.Join(t.TempDir(), "go tools")
	require.NoError(t, os.Mkdir(tmp, 0o755))
	log := filepath.Join(tmp, "go.log")
	script := filepath.Join(tmp, "logging-go")
	body := "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '" + log + "'\nexec '" + realGo + "' \"$@\"\n"
	require.NoError(t, os.WriteFile(script, []byte(body), 0o755))
	return script, log
}

// goCalls returns the logged calls of a loggingGo binary.
func goCalls(t *testing.T, log string) []string {
	t.Helper()
	body, err := os.ReadFile(log)
	require.NoError(t, err, "go_command was never run")
	return strings.Split(strings.TrimSpace(string(body)), "\n")
}

// TestBuildHashCoversOnlyWhatTheFunctionsCompile: the build's content hash
// (and so every function's source_code_hash) ignores tests, testdata and the
// packages no function imports (lambda/localgw, lambda/mgmtapitest), and
// changes with a function's own sources and with the packager.
func TestBuildHashCoversOnlyWhatTheFunctionsCompile(t *testing.T) {
	t.Parallel()
	dir := copyModule(t)
	opts := options(t, "terraform", dir, map[string]interface{}{"name": "wst-hash", "cleanup_schedule_minutes": 0})
	terraform.Init(t, opts)
	hashes := func() (string, string) {
		t.Helper()
		plan := planShow(t, withPlanFile(t, withVars(opts, nil)))
		build := planned(t, plan, "terraform_data.build[0]")["triggers_replace"].(map[string]interface{})
		return build["source_hash"].(string), planned(t, plan, `aws_lambda_function.this["websocket"]`)["source_code_hash"].(string)
	}
	appendTo := func(rel, text string) {
		t.Helper()
		p := filepath.Join(dir, filepath.FromSlash(rel))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		f, err := os.OpenFile(p, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		require.NoError(t, err)
		_, err = f.WriteString(text)
		require.NoError(t, err)
		require.NoError(t, f.Close())
	}
	baseSource, baseCode := hashes()
	require.Len(t, baseSource, 64)

	for _, rel := range []string{
		"lambda/localgw/gateway.go",
		"lambda/mgmtapitest/zz_new.go",
		"lambda/store/store_test.go",
		"lambda/localgw/testdata/echobootstrap/main.go",
		"lambda/protocol/testdata/zz_fixture.go",
		"tools/package/main_test.go",
	} {
		appendTo(rel, "\n// an edit the functions never compile\n")
		source, code := hashes()
		assert.Equal(t, baseSource, source, "%s is not part of the build hash", rel)
		assert.Equal(t, baseCode, code, "%s redeploys nothing", rel)
	}

	for _, rel := range []string{"lambda/cmd/websocket/main.go", "tools/package/main.go"} {
		appendTo(rel, "\n// a change of what the functions compile\n")
		source, code := hashes()
		assert.NotEqual(t, baseSource, source, "%s is part of the build hash", rel)
		assert.NotEqual(t, baseCode, code, "%s redeploys the websocket function", rel)
		baseSource, baseCode = source, code
	}
}
