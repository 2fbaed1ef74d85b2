package terraform_test

import (
	"bufio"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/zclconf/go-cty/cty"
)

// runtimeDeprecationsFile is the committed table of Lambda runtime
// deprecation dates (from AWS's runtime tables).
const runtimeDeprecationsFile = "testdata/lambda-runtime-deprecations.txt"

// runtimeDeprecations reads the table: runtime identifier => deprecation date.
func runtimeDeprecations(t *testing.T) map[string]time.Time {
	t.Helper()
	f, err := os.Open(runtimeDeprecationsFile)
	require.NoError(t, err)
	defer f.Close()
	out := map[string]time.Time{}
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		fields := strings.Fields(text)
		require.Lenf(t, fields, 2, "%s:%d: want `identifier date`", runtimeDeprecationsFile, line)
		date, err := time.Parse(time.DateOnly, fields[1])
		require.NoErrorf(t, err, "%s:%d", runtimeDeprecationsFile, line)
		out[fields[0]] = date
	}
	require.NoError(t, sc.Err())
	require.NotEmpty(t, out)
	return out
}

// lambdaRuntime is one `runtime` of an aws_lambda_function in a .tf file.
type lambdaRuntime struct {
	where   string // file:line and resource address
	runtime string
}

// lambdaRuntimesInConfigurations parses every .tf file of the repository
// (module, examples, anything else; not .terraform or .tools) and returns the
// runtime of each aws_lambda_function resource. A runtime that is not a
// literal string fails the test: the check must see every runtime.
func lambdaRuntimesInConfigurations(t *testing.T) []lambdaRuntime {
	t.Helper()
	var out []lambdaRuntime
	root, err := filepath.Abs(repoRoot)
	require.NoError(t, err)
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".tf") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		file, diags := hclsyntax.ParseConfig(src, rel, hcl.InitialPos)
		require.Falsef(t, diags.HasErrors(), "parse %s: %s", rel, diags.Error())
		for _, block := range file.Body.(*hclsyntax.Body).Blocks {
			if block.Type != "resource" || len(block.Labels) != 2 || block.Labels[0] != "aws_lambda_function" {
				continue
			}
			attr, ok := block.Body.Attributes["runtime"]
			if !ok {
				continue // container image functions have no runtime
			}
			where := attr.SrcRange.String() + " aws_lambda_function." + block.Labels[1]
			v, diags := attr.Expr.Value(nil)
			require.Falsef(t, diags.HasErrors() || !v.IsKnown() || v.Type() != cty.String,
				"%s: runtime must be a literal string so this check can read it", where)
			out = append(out, lambdaRuntime{where: where, runtime: v.AsString()})
		}
		return nil
	})
	require.NoError(t, err)
	return out
}

// TestNoDeprecatedLambdaRuntimes: no aws_lambda_function in the module, the
// examples or anywhere else in the repository uses a runtime that Lambda has
// deprecated (AWS refuses to create functions on it soon after; nodejs20.x
// broke examples/complete that way), or a runtime missing from the committed
// deprecation table. The AWS ruleset of tflint, which has such a rule, cannot
// be installed offline, hence this check.
func TestNoDeprecatedLambdaRuntimes(t *testing.T) {
	t.Parallel()
	deprecations := runtimeDeprecations(t)
	found := lambdaRuntimesInConfigurations(t)
	require.NotEmpty(t, found, "no aws_lambda_function found: is repoRoot right?")
	today := time.Now().UTC().Truncate(24 * time.Hour)
	for _, f := range found {
		date, known := deprecations[f.runtime]
		if !assert.Truef(t, known, "%s: runtime %q is not in %s; add it with its deprecation date from https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html", f.where, f.runtime, runtimeDeprecationsFile) {
			continue
		}
		assert.Truef(t, today.Before(date), "%s: runtime %q was deprecated on %s; AWS refuses to create functions on it. Move to a supported runtime (see %s)", f.where, f.runtime, date.Format(time.DateOnly), runtimeDeprecationsFile)
		if left := date.Sub(today); left > 0 && left < 90*24*time.Hour {
			t.Logf("%s: runtime %q is deprecated on %s, in %d days: plan the move", f.where, f.runtime, date.Format(time.DateOnly), int(left.Hours()/24))
		}
	}
}

// TestDeprecatedRuntimeCheckCatchesNodejs20: the check reads literal runtimes
// and knows nodejs20.x is past its deprecation date (the runtime that broke
// examples/complete).
func TestDeprecatedRuntimeCheckCatchesNodejs20(t *testing.T) {
	t.Parallel()
	deprecations := runtimeDeprecations(t)
	date, ok := deprecations["nodejs20.x"]
	require.True(t, ok)
	assert.True(t, time.Now().UTC().After(date), "nodejs20.x is deprecated since %s", date.Format(time.DateOnly))
	supported, ok := deprecations["nodejs22.x"]
	require.True(t, ok)
	assert.True(t, time.Now().UTC().Before(supported), "nodejs22.x, the example's runtime, is supported")
}
