package terraform_test

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gruntwork-io/terratest/modules/terraform"
	tfjson "github.com/hashicorp/terraform-json"
	"github.com/stretchr/testify/require"
)

// repoRoot is the module under test, relative to this package.
const repoRoot = "../.."

// tools maps a tool name to the environment variable that holds its binary;
// `make test-terraform` sets both and the CLI config with the schema-replay
// provider (TF_CLI_CONFIG_FILE).
var tools = map[string]string{
	"terraform": "TERRAFORM_BINARY",
	"tofu":      "TOFU_BINARY",
}

// toolBinary returns the binary of tool, failing when make did not provide it.
func toolBinary(t *testing.T, tool string) string {
	t.Helper()
	bin := os.Getenv(tools[tool])
	require.NotEmptyf(t, bin, "%s is not set: run the tests through `make test-terraform`", tools[tool])
	return bin
}

// cliConfig returns the CLI configuration that installs the test provider.
func cliConfig(t *testing.T) string {
	t.Helper()
	cfg := os.Getenv("TF_CLI_CONFIG_FILE")
	require.NotEmpty(t, cfg, "TF_CLI_CONFIG_FILE is not set: run the tests through `make test-terraform`")
	require.FileExists(t, cfg)
	return cfg
}

// copyModule copies what the module and its examples need (the .tf files,
// Go sources the build hashes, examples) to a temporary folder, so parallel
// tests never share .terraform folders, plan files or state.
func copyModule(t *testing.T) string {
	t.Helper()
	dst := t.TempDir()
	root, err := filepath.Abs(repoRoot)
	require.NoError(t, err)
	keep := func(rel string, d fs.DirEntry) bool {
		top := strings.SplitN(rel, string(filepath.Separator), 2)[0]
		if d.IsDir() {
			if rel == "." {
				return true
			}
			if strings.HasPrefix(d.Name(), ".") || d.Name() == "node_modules" {
				return false
			}
			return top == "lambda" || top == "tools" || top == "examples" || top == "cmd" || top == "functions"
		}
		if !strings.Contains(rel, string(filepath.Separator)) {
			return strings.HasSuffix(rel, ".tf") || rel == "go.mod" || rel == "go.sum"
		}
		return !strings.HasSuffix(rel, ".tfstate") && !strings.HasSuffix(rel, ".lock.hcl")
	}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		if !keep(rel, d) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		body, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, body, 0o644)
	})
	require.NoError(t, err, "copy module to %s", dst)
	return dst
}

// options returns Terratest options for dir (inside a copy) run with tool.
func options(t *testing.T, tool, dir string, vars map[string]interface{}) *terraform.Options {
	t.Helper()
	return &terraform.Options{
		TerraformBinary: toolBinary(t, tool),
		TerraformDir:    dir,
		Vars:            vars,
		NoColor:         true,
		EnvVars: map[string]string{
			"TF_CLI_CONFIG_FILE": cliConfig(t),
			"TF_IN_AUTOMATION":   "1",
			// The fake provider needs no credentials; make sure no real ones leak in.
			"AWS_ACCESS_KEY_ID":     "",
			"AWS_SECRET_ACCESS_KEY": "",
			"AWS_PROFILE":           "",
		},
	}
}

// withPlanFile sets a per-test plan file (needed by the *WithStruct helpers).
func withPlanFile(t *testing.T, opts *terraform.Options) *terraform.Options {
	t.Helper()
	opts.PlanFilePath = filepath.Join(t.TempDir(), "tfplan")
	return opts
}

// planModule plans the root module (in a fresh copy) with vars.
func planModule(t *testing.T, vars map[string]interface{}) *terraform.PlanStruct {
	t.Helper()
	return terraform.InitAndPlanAndShowWithStruct(t, withPlanFile(t, options(t, "terraform", copyModule(t), vars)))
}

// planned returns the planned values of the resource at address.
func planned(t *testing.T, plan *terraform.PlanStruct, address string) map[string]interface{} {
	t.Helper()
	r, ok := plan.ResourcePlannedValuesMap[address]
	require.Truef(t, ok, "resource %s is not in the plan; planned: %v", address, addresses(plan))
	return r.AttributeValues
}

// addresses lists the planned resource addresses.
func addresses(plan *terraform.PlanStruct) []string {
	out := make([]string, 0, len(plan.ResourcePlannedValuesMap))
	for a := range plan.ResourcePlannedValuesMap {
		out = append(out, a)
	}
	return out
}

// block returns the single nested block name of values (blocks are lists in JSON).
func block(t *testing.T, values map[string]interface{}, name string) map[string]interface{} {
	t.Helper()
	list, ok := values[name].([]interface{})
	require.Truef(t, ok && len(list) == 1, "block %s: want exactly one, got %#v", name, values[name])
	m, ok := list[0].(map[string]interface{})
	require.Truef(t, ok, "block %s is not an object: %#v", name, list[0])
	return m
}

// environment returns a function's planned environment variables.
func environment(t *testing.T, plan *terraform.PlanStruct, address string) map[string]interface{} {
	t.Helper()
	env := block(t, planned(t, plan, address), "environment")
	vars, ok := env["variables"].(map[string]interface{})
	require.Truef(t, ok, "%s: environment.variables not known at plan: %#v", address, env)
	return vars
}

// outputValue returns a planned output value known at plan time.
func outputValue(t *testing.T, plan *terraform.PlanStruct, name string) interface{} {
	t.Helper()
	o, ok := plan.RawPlan.PlannedValues.Outputs[name]
	require.Truef(t, ok, "output %s not planned", name)
	return o.Value
}

// stateResources lists every resource (root and modules) in a state.
func stateResources(m *tfjson.StateModule) []*tfjson.StateResource {
	if m == nil {
		return nil
	}
	out := append([]*tfjson.StateResource(nil), m.Resources...)
	for _, c := range m.ChildModules {
		out = append(out, stateResources(c)...)
	}
	return out
}

// policyDocument is the subset of an IAM policy the tests inspect.
type policyDocument struct {
	Version   string            `json:"Version"`
	Statement []policyStatement `json:"Statement"`
}

type policyStatement struct {
	Sid      string      `json:"Sid"`
	Effect   string      `json:"Effect"`
	Action   stringOrSet `json:"Action"`
	Resource stringOrSet `json:"Resource"`
	// Condition is operator -> key -> values.
	Condition map[string]map[string]stringOrSet `json:"Condition,omitempty"`
}

// stringOrSet decodes IAM's "string or list of strings".
type stringOrSet []string

func (s *stringOrSet) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*s = []string{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*s = many
	return nil
}

func parsePolicy(t *testing.T, doc string) policyDocument {
	t.Helper()
	var p policyDocument
	require.NoErrorf(t, json.Unmarshal([]byte(doc), &p), "policy is not JSON: %s", doc)
	require.Equal(t, "2012-10-17", p.Version)
	require.NotEmpty(t, p.Statement)
	return p
}

// writeFakeZips writes a stand-in deployment package per function, and one
// for the deployer, which every configuration has, and returns the
// lambda_artifacts map (the schema-replay apply never reads them).
func writeFakeZips(t *testing.T, functions ...string) map[string]interface{} {
	t.Helper()
	dir := t.TempDir()
	out := map[string]interface{}{}
	for _, fn := range append([]string{"deployer"}, functions...) {
		p := filepath.Join(dir, fn+".zip")
		require.NoError(t, os.WriteFile(p, []byte("stand-in package for "+fn), 0o644))
		out[fn] = p
	}
	return out
}

// planShow plans opts (already initialised, with a plan file) and returns the
// plan as a struct, without running init again.
func planShow(t *testing.T, opts *terraform.Options) *terraform.PlanStruct {
	t.Helper()
	require.NotEmpty(t, opts.PlanFilePath, "planShow needs a plan file: use withPlanFile")
	terraform.Plan(t, opts)
	return terraform.ShowWithStruct(t, opts)
}

// withVars returns a copy of opts with vars merged over its variables and no
// plan file, so a test can plan or apply variants of one configuration.
func withVars(opts *terraform.Options, vars map[string]interface{}) *terraform.Options {
	c := *opts
	c.PlanFilePath = ""
	c.Vars = map[string]interface{}{}
	for k, v := range opts.Vars {
		c.Vars[k] = v
	}
	for k, v := range vars {
		c.Vars[k] = v
	}
	return &c
}
