package terraform_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/gruntwork-io/terratest/modules/terraform"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	releaseTag = "v0.1.0"
	bundledTag = releaseTag + "-bundled"
)

// releaseFunctions are the functions every release bundles (lambda/cmd/*).
var releaseFunctions = []string{"authorizer", "deployer", "fanout", "publisher", "websocket"}

// releaseVars deploys all five functions, so every bundled zip is used.
var releaseVars = map[string]interface{}{
	"name":                     "wst-release",
	"cleanup_schedule_minutes": 0,
	"authorizer":               map[string]interface{}{"mode": "jwt", "jwt": map[string]interface{}{"secret_arn": jwtSecretARN}},
	"distributed_fanout":       map[string]interface{}{"enabled": true},
}

// releaseManifest is the part of dist/manifest.json the tests read.
type releaseManifest struct {
	SourceHash string                       `json:"source_hash"`
	GoVersion  string                       `json:"go_version"`
	Zips       map[string]map[string]string `json:"zips"`
}

// TestReleaseTreeDeploysWithoutGo makes a release the way the release
// workflow does, in a git copy of the repository: source tag v0.1.0, `make
// release-dist` (both architectures), scripts/release-tree.sh, which tags
// v0.1.0-bundled = the tag plus dist/ and moves no branch. Then
// scripts/verify-release.sh reproduces the release from the tag and accepts
// its SHA256SUMS, and rejects a tampered one. Then, with Terraform and
// OpenTofu, a module source pinned to each tag (its git archive) plans:
//   - v0.1.0-bundled with no Go on PATH: no build step, the functions deploy
//     dist/<arch>/<fn>.zip with their real hash (arm64 and x86_64);
//     the same through the tool's git source, ?ref=v0.1.0-bundled&depth=1,
//     which clones that tag's one commit and no other release;
//     lambda_artifacts still win; use_bundled_artifacts = false builds;
//   - v0.1.0 with Go: the build step, whose source hash (computed by
//     Terraform) equals the manifest's (computed by tools/package);
//   - v0.1.0 without Go: plan fails and says what to do;
//   - v0.1.0-bundled with an edited source: the bundle no longer matches, so
//     plan fails without Go, saying why, and builds with Go.
func TestReleaseTreeDeploysWithoutGo(t *testing.T) {
	t.Parallel()
	repo := copyRepo(t)
	git(t, repo, "init", "-q", "-b", "main")
	git(t, repo, "add", "-A")
	git(t, repo, "commit", "-q", "-m", "source")
	git(t, repo, "tag", releaseTag)
	source := strings.TrimSpace(git(t, repo, "rev-parse", "HEAD"))

	run(t, repo, nil, "make", "release-dist")

	// A bundle of one architecture (what make package builds) is refused.
	oneArch := t.TempDir()
	var m map[string]interface{}
	require.NoError(t, json.Unmarshal(readFile(t, filepath.Join(repo, "dist", "manifest.json")), &m))
	delete(m["zips"].(map[string]interface{}), "x86_64")
	body, err := json.Marshal(m)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(oneArch, "manifest.json"), body, 0o644))
	require.NoError(t, os.Mkdir(filepath.Join(oneArch, "arm64"), 0o755))
	for _, fn := range releaseFunctions {
		require.NoError(t, os.WriteFile(filepath.Join(oneArch, "arm64", fn+".zip"), readFile(t, filepath.Join(repo, "dist", "arm64", fn+".zip")), 0o644))
	}
	out, err := runE(repo, nil, "scripts/release-tree.sh", releaseTag, oneArch)
	require.Error(t, err, "a one-architecture bundle must be refused: %s", out)
	assert.Contains(t, out, "has no x86_64 zips")

	out = run(t, repo, nil, "scripts/release-tree.sh", releaseTag)
	assert.Contains(t, out, "tagged "+bundledTag)

	// The release tree: the source commit plus dist/ only; no branch moved.
	assert.Equal(t, source, strings.TrimSpace(git(t, repo, "rev-parse", bundledTag+"^{commit}^")), "the bundled commit's parent is the source tag")
	assert.Equal(t, source, strings.TrimSpace(git(t, repo, "rev-parse", "main")), "main does not get the zips")
	assert.Empty(t, strings.TrimSpace(git(t, repo, "status", "--porcelain", "--untracked-files=no")), "the working tree and index are untouched")
	added := strings.Fields(git(t, repo, "diff", "--name-only", releaseTag, bundledTag))
	want := []string{"dist/manifest.json"}
	for _, arch := range []string{"arm64", "x86_64"} {
		for _, fn := range releaseFunctions {
			want = append(want, "dist/"+arch+"/"+fn+".zip")
		}
	}
	sort.Strings(want)
	assert.Equal(t, want, added, "the bundled tag adds exactly the manifest and the zips")
	out, err = runE(repo, nil, "scripts/release-tree.sh", releaseTag)
	require.Error(t, err, "a second run must refuse to move the tag: %s", out)
	assert.Contains(t, out, "tag "+bundledTag+" exists already")

	// Reproduce the release from the tag and compare with SHA256SUMS.
	sums := filepath.Join(repo, "dist", "assets", "SHA256SUMS")
	out = run(t, repo, nil, "scripts/verify-release.sh", bundledTag, sums)
	for _, arch := range []string{"arm64", "x86_64"} {
		for _, fn := range releaseFunctions {
			assert.Regexp(t, `OK +`+fn+"-"+arch+`\.zip [0-9a-f]{64}`, out)
			assert.Contains(t, out, "OK       dist/"+arch+"/"+fn+".zip of "+bundledTag)
		}
	}
	assert.Contains(t, out, "reproduces SHA256SUMS exactly")
	assert.Contains(t, out, "OK       "+bundledTag+" differs from "+releaseTag+" only in dist/")

	// A bundled tag with a file more in dist/ and an edited main.tf (which
	// the zips' source hash does not cover) fails, naming both; so do a
	// missing manifest, a damaged zip, a symlink, and files git archive
	// would hide (.gitattributes export-ignore): dist/ is read from the
	// tag's tree. The SHA256SUMS here is in sha256sum's binary form.
	git(t, repo, "tag", "v0.1.1", releaseTag)
	tree := filepath.Join(t.TempDir(), "tampered")
	git(t, repo, "worktree", "add", "-q", "--detach", tree, bundledTag)
	require.NoError(t, os.WriteFile(filepath.Join(tree, "dist", "arm64", "extra.zip"), []byte("x"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(tree, "dist", "arm64", "hidden.zip"), []byte("x"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(tree, "dist", ".gitattributes"), []byte("hidden.zip export-ignore\n.gitattributes export-ignore\n"), 0o644))
	require.NoError(t, os.Symlink("websocket.zip", filepath.Join(tree, "dist", "arm64", "link.zip")))
	appendLine(t, filepath.Join(tree, "dist", "arm64", "websocket.zip"), "x")
	appendLine(t, filepath.Join(tree, "main.tf"), "# an edit")
	git(t, tree, "rm", "-q", "dist/manifest.json")
	git(t, tree, "add", "-f", "dist", "main.tf")
	git(t, tree, "commit", "-q", "-m", "tampered")
	git(t, tree, "tag", "v0.1.1-bundled")
	git(t, repo, "worktree", "remove", "--force", tree)
	binarySums := filepath.Join(t.TempDir(), "SHA256SUMS")
	require.NoError(t, os.WriteFile(binarySums, regexp.MustCompile(`(?m)^([0-9a-f]{64})  `).ReplaceAll(readFile(t, sums), []byte("$1 *")), 0o644))
	out, err = runE(repo, nil, "scripts/verify-release.sh", "v0.1.1-bundled", binarySums)
	require.Error(t, err, "a bundled tag with more than its source and dist/ must fail: %s", out)
	for _, want := range []string{
		"EXTRA    dist/arm64/extra.zip of v0.1.1-bundled: not a rebuilt file",
		"EXTRA    dist/arm64/hidden.zip of v0.1.1-bundled: not a rebuilt file",
		"EXTRA    dist/.gitattributes of v0.1.1-bundled: not a rebuilt file",
		"EXTRA    dist/arm64/link.zip of v0.1.1-bundled: not a regular file (mode 120000)",
		"MISSING  dist/manifest.json of v0.1.1-bundled",
		"MISMATCH dist/arm64/websocket.zip of v0.1.1-bundled differs from the rebuilt zip",
		"CHANGED  main.tf: v0.1.1-bundled differs from v0.1.1 outside dist/",
	} {
		assert.Contains(t, out, want)
	}
	assert.Contains(t, out, "OK       publisher-arm64.zip", "the zips themselves still reproduce (binary-form sums read)")
	assert.NotContains(t, out, "the release was built with", "the same Go version is not blamed")

	// A published sum that the source does not build fails, naming the asset.
	body, err = os.ReadFile(sums)
	require.NoError(t, err)
	var armOnly []string
	for _, line := range strings.Split(strings.TrimSpace(string(body)), "\n") {
		if strings.HasSuffix(line, "-arm64.zip") {
			if strings.HasSuffix(line, "  websocket-arm64.zip") {
				line = strings.Repeat("0", 64) + "  websocket-arm64.zip"
			}
			armOnly = append(armOnly, line)
		}
	}
	tampered := filepath.Join(t.TempDir(), "SHA256SUMS")
	require.NoError(t, os.WriteFile(tampered, []byte(strings.Join(armOnly, "\n")+"\n"), 0o644))
	out, err = runE(repo, []string{"RELEASE_ARCHS=arm64"}, "scripts/verify-release.sh", releaseTag, tampered)
	require.Error(t, err, "a tampered SHA256SUMS must fail: %s", out)
	assert.Contains(t, out, "MISMATCH websocket-arm64.zip: published "+strings.Repeat("0", 64))
	assert.Contains(t, out, "OK       publisher-arm64.zip")
	assert.Contains(t, out, "does NOT reproduce")

	// A bundled tag is verified whole: one architecture of it is refused
	// before any build (its manifest lists both).
	out, err = runE(repo, []string{"RELEASE_ARCHS=arm64"}, "scripts/verify-release.sh", bundledTag, tampered)
	require.Error(t, err, "one architecture of a bundled tag must be refused: %s", out)
	assert.Contains(t, out, "verify-release: "+bundledTag+" is a bundled tag: its dist/ and manifest hold both architectures, so it is verified whole; unset RELEASE_ARCHS (it is arm64)")
	assert.NotContains(t, out, "rebuilding")

	var manifest releaseManifest
	manifestBody, err := os.ReadFile(filepath.Join(repo, "dist", "manifest.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(manifestBody, &manifest))
	require.Len(t, manifest.SourceHash, 64)

	for _, tool := range []string{"terraform", "tofu"} {
		t.Run(tool, func(t *testing.T) {
			t.Parallel()
			bundled := gitArchive(t, repo, bundledTag)
			opts := options(t, tool, bundled, releaseVars)
			noGo := withPath(opts, pathWithoutGo(t))
			terraform.Init(t, noGo)

			for _, arch := range []string{"arm64", "x86_64"} {
				plan := planShow(t, withPlanFile(t, withVars(noGo, map[string]interface{}{"lambda_architecture": arch})))
				assert.NotContains(t, plan.ResourceChangesMap, "terraform_data.build[0]", "%s: a bundled release builds nothing", arch)
				assert.Equal(t, "bundled", outputValue(t, plan, "lambda_artifact_source"))
				for _, fn := range releaseFunctions {
					fnPlan := planned(t, plan, `aws_lambda_function.this["`+fn+`"]`)
					zip := "dist/" + arch + "/" + fn + ".zip"
					assert.Equal(t, "./"+zip, fnPlan["filename"], "%s deploys the bundled zip", fn)
					assert.Equal(t, fileBase64SHA256(t, filepath.Join(bundled, zip)), fnPlan["source_code_hash"], "%s: the bundled zip's real hash", fn)
					assert.Equal(t, manifest.Zips[arch][fn], fileSHA256(t, filepath.Join(bundled, zip)))
				}
			}

			// The bundled tag as users pin it, through the tool's own git
			// getter: a shallow clone (depth=1) of that tag alone, which
			// holds its zips and no other release's.
			root := t.TempDir()
			gitSource := fmt.Sprintf("git::file://%s?ref=%s&depth=1", repo, bundledTag)
			require.NoError(t, os.WriteFile(filepath.Join(root, "main.tf"), []byte(fmt.Sprintf(`module "ws" {
  source                   = %q
  name                     = "wst-release"
  cleanup_schedule_minutes = 0
  authorizer               = { mode = "jwt", jwt = { secret_arn = %q } }
}

output "lambda_artifact_source" { value = module.ws.lambda_artifact_source }
`, gitSource, jwtSecretARN)), 0o644))
			viaGit := withPath(options(t, tool, root, nil), pathWithoutGo(t))
			terraform.Init(t, viaGit)
			installed := filepath.Join(root, ".terraform", "modules", "ws")
			assert.Equal(t, "1", strings.TrimSpace(git(t, installed, "rev-list", "--count", "HEAD")), "depth=1 clones one commit")
			assert.Equal(t, strings.TrimSpace(git(t, repo, "rev-parse", bundledTag+"^{commit}")), strings.TrimSpace(git(t, installed, "rev-parse", "HEAD")))
			other := strings.TrimSpace(git(t, repo, "rev-parse", "v0.1.1-bundled^{commit}"))
			_, err := runE(installed, nil, "git", "cat-file", "-e", other)
			assert.Error(t, err, "another release's bundle (v0.1.1-bundled) is not fetched")
			plan := planShow(t, withPlanFile(t, viaGit))
			assert.Equal(t, "bundled", outputValue(t, plan, "lambda_artifact_source"), "a git source pinned to the bundled tag deploys its zips without Go")
			assert.NotContains(t, plan.ResourceChangesMap, "module.ws.terraform_data.build[0]")

			given := writeFakeZips(t, releaseFunctions...)
			plan = planShow(t, withPlanFile(t, withVars(noGo, map[string]interface{}{"lambda_artifacts": given})))
			assert.Equal(t, "lambda_artifacts", outputValue(t, plan, "lambda_artifact_source"), "lambda_artifacts override the bundle")
			assert.Equal(t, given["websocket"], planned(t, plan, `aws_lambda_function.this["websocket"]`)["filename"])
			assert.NotContains(t, plan.ResourceChangesMap, "terraform_data.build[0]")

			plan = planShow(t, withPlanFile(t, withVars(opts, map[string]interface{}{"use_bundled_artifacts": false})))
			assert.Equal(t, "build", outputValue(t, plan, "lambda_artifact_source"), "use_bundled_artifacts = false builds from source")
			assert.Contains(t, plan.ResourceChangesMap, "terraform_data.build[0]")

			// The source tag: a build step with Go, the error without.
			src := gitArchive(t, repo, releaseTag)
			srcOpts := options(t, tool, src, releaseVars)
			terraform.Init(t, srcOpts)
			plan = planShow(t, withPlanFile(t, withVars(srcOpts, nil)))
			assert.Equal(t, "build", outputValue(t, plan, "lambda_artifact_source"))
			triggers := planned(t, plan, "terraform_data.build[0]")["triggers_replace"].(map[string]interface{})
			assert.Equal(t, manifest.SourceHash, triggers["source_hash"], "Terraform and tools/package compute the same source hash")
			requireNoGoError(t, withPath(srcOpts, pathWithoutGo(t)),
				`"go" (go_command) is not on PATH, and this copy of the module has no bundled zips (dist/manifest.json)`)
			requireNoGoError(t, withVars(srcOpts, map[string]interface{}{"go_command": "/nonexistent/go"}),
				`go_command "/nonexistent/go" does not exist`)
			// One byte that is not UTF-8 anywhere in the environment (file()
			// refuses such a /proc/self/environ) leaves the check on.
			latin1 := withPath(srcOpts, pathWithoutGo(t))
			latin1.EnvVars["LEGACY"] = "caf\xe9"
			requireNoGoError(t, latin1, `"go" (go_command) is not on PATH`)

			// A module folder whose path fileset() reads as a pattern finds
			// no sources: said at plan, not hashed as go.mod alone.
			// (A folder of that name: Terraform resolves a symlink first.)
			globRoot := t.TempDir()
			require.NoError(t, os.Rename(gitArchive(t, repo, releaseTag), filepath.Join(globRoot, "ws[1]")))
			require.NoError(t, os.WriteFile(filepath.Join(globRoot, "main.tf"), []byte(`module "ws" {
  source                   = "./ws[1]"
  name                     = "wst-release"
  cleanup_schedule_minutes = 0
}
`), 0o644))
			globOpts := options(t, tool, globRoot, nil)
			terraform.Init(t, globOpts)
			assert.Contains(t, planRefusal(t, globOpts, "a module in ws[1]"), "Terraform finds no Go sources under ws[1]/lambda")

			// A damaged bundle says what is damaged: the one zip, or the manifest.
			damaged := gitArchive(t, repo, bundledTag)
			appendLine(t, filepath.Join(damaged, "dist", "arm64", "publisher.zip"), "x")
			damagedOpts := withPath(options(t, tool, damaged, releaseVars), pathWithoutGo(t))
			terraform.Init(t, damagedOpts)
			requireNoGoError(t, damagedOpts, `"go" (go_command) is not on PATH, and dist/arm64/ lacks a zip of publisher with the sha256 of dist/manifest.json (missing or damaged`)
			require.NoError(t, os.WriteFile(filepath.Join(damaged, "dist", "manifest.json"), []byte(`{"source_hash":`), 0o644))
			requireNoGoError(t, damagedOpts, `"go" (go_command) is not on PATH, and dist/manifest.json cannot be read`)

			// Sources that differ from the manifest's: the bundle is not used.
			appendLine(t, filepath.Join(bundled, "lambda", "cmd", "websocket", "main.go"), "// a local edit")
			requireNoGoError(t, noGo, `"go" (go_command) is not on PATH, and dist/manifest.json was built from other sources (source hash `+manifest.SourceHash)
			plan = planShow(t, withPlanFile(t, withVars(opts, nil)))
			assert.Equal(t, "build", outputValue(t, plan, "lambda_artifact_source"), "edited sources are built, not replaced by stale zips")
		})
	}
}

// requireNoGoError plans opts, which can neither build nor use a bundle, and
// checks the error names the cause and every way out.
func requireNoGoError(t *testing.T, opts *terraform.Options, cause string) {
	t.Helper()
	out, err := terraform.PlanE(t, withVars(opts, nil))
	require.Error(t, err, "plan must fail without Go and without a matching bundle")
	text := diagnosticText(out + err.Error())
	// Only the diagnostic, so a failure does not print the whole plan.
	if i := strings.Index(text, "Error: Resource precondition failed"); i >= 0 {
		text = text[i:]
	}
	assert.Contains(t, text, "Cannot build the Lambda functions: "+cause)
	for _, remedy := range []string{
		`pin the module source to a vX.Y.Z-bundled tag ("github.com/wsforge/terraform-aws-websocket?ref=vX.Y.Z-bundled&depth=1")`,
		"set lambda_artifacts to the zips of a release (<function>-arm64.zip, checked against its SHA256SUMS)",
		"install Go (the version in the module's go.mod) on PATH, or set go_command to its path",
	} {
		assert.Contains(t, text, remedy)
	}
}

// diagnosticText joins a wrapped Terraform diagnostic back into one line:
// the box-drawing margin goes and runs of white space become one space.
func diagnosticText(s string) string {
	s = strings.NewReplacer("│", " ", "╷", " ", "╵", " ").Replace(s)
	return strings.Join(strings.Fields(s), " ")
}

// copyRepo copies the module (copyModule) plus what releases need: the
// Makefile, mk/, scripts/ and .gitignore.
func copyRepo(t *testing.T) string {
	t.Helper()
	dst := copyModule(t)
	root, err := filepath.Abs(repoRoot)
	require.NoError(t, err)
	for _, rel := range []string{"Makefile", ".gitignore"} {
		copyFileMode(t, filepath.Join(root, rel), filepath.Join(dst, rel))
	}
	for _, dir := range []string{"mk", "scripts"} {
		entries, err := os.ReadDir(filepath.Join(root, dir))
		require.NoError(t, err)
		require.NoError(t, os.MkdirAll(filepath.Join(dst, dir), 0o755))
		for _, e := range entries {
			if !e.IsDir() {
				copyFileMode(t, filepath.Join(root, dir, e.Name()), filepath.Join(dst, dir, e.Name()))
			}
		}
	}
	return dst
}

// copyFileMode copies src to dst with its permission bits (scripts stay executable).
func copyFileMode(t *testing.T, src, dst string) {
	t.Helper()
	info, err := os.Stat(src)
	require.NoError(t, err)
	body, err := os.ReadFile(src)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(dst, body, info.Mode().Perm()))
}

// runE runs name in dir with the test's environment plus env (make's own
// variables removed, so a nested make starts fresh) and returns its combined output.
func runE(dir string, env []string, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k != "MAKEFLAGS" && k != "MFLAGS" && k != "MAKELEVEL" {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// run is runE that fails the test when the command fails.
func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	out, err := runE(dir, env, name, args...)
	require.NoError(t, err, "%s %v:\n%s", name, args, out)
	return out
}

// git runs git in repo with a fixed identity.
func git(t *testing.T, repo string, args ...string) string {
	t.Helper()
	full := append([]string{"-c", "user.name=test", "-c", "user.email=test@localhost", "-c", "tag.gpgSign=false", "-c", "commit.gpgSign=false"}, args...)
	return run(t, repo, nil, "git", full...)
}

// gitArchive extracts ref of repo into a new folder: what a module source
// pinned to that ref contains.
func gitArchive(t *testing.T, repo, ref string) string {
	t.Helper()
	dir := t.TempDir()
	archive := filepath.Join(t.TempDir(), "tree.tar")
	git(t, repo, "archive", "--format=tar", "-o", archive, ref)
	run(t, dir, nil, "tar", "-xf", archive)
	return dir
}

// pathWithoutGo is this machine's PATH without the folders that hold a go binary.
func pathWithoutGo(t *testing.T) string {
	t.Helper()
	var keep []string
	for _, d := range filepath.SplitList(os.Getenv("PATH")) {
		if _, err := os.Stat(filepath.Join(d, "go")); err != nil {
			keep = append(keep, d)
		}
	}
	path := strings.Join(keep, string(filepath.ListSeparator))
	_, err := exec.LookPath("go")
	require.NoError(t, err, "the release test needs go on PATH to build the release")
	return path
}

// withPath returns a copy of opts whose Terraform process runs with PATH.
func withPath(opts *terraform.Options, path string) *terraform.Options {
	c := *opts
	c.EnvVars = map[string]string{}
	for k, v := range opts.EnvVars {
		c.EnvVars[k] = v
	}
	c.EnvVars["PATH"] = path
	return &c
}

// appendLine appends a line to a file.
func appendLine(t *testing.T, path, line string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString("\n" + line + "\n")
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

// fileSHA256 is Terraform's filesha256: the file's lowercase hex sha256.
func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	body, err := os.ReadFile(path)
	require.NoError(t, err)
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:])
}

// fileBase64SHA256 is Terraform's filebase64sha256.
func fileBase64SHA256(t *testing.T, path string) string {
	t.Helper()
	body, err := os.ReadFile(path)
	require.NoError(t, err)
	sum := sha256.Sum256(body)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// TestWorkflowActionsArePinnedByCommit: every action a workflow uses is
// pinned to a full commit SHA (with the version in a comment), so a moved
// or hijacked tag cannot change what the release job runs with its token.
func TestWorkflowActionsArePinnedByCommit(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join(repoRoot, ".github", "workflows", "*.yml"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	uses := regexp.MustCompile(`(?m)^\s*-?\s*uses:\s*(\S+)(.*)$`)
	pinned := regexp.MustCompile(`^[\w.-]+/[\w./-]+@[0-9a-f]{40}$`)
	n := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, m := range uses.FindAllStringSubmatch(string(b), -1) {
			n++
			assert.Regexp(t, pinned, m[1], "%s: %s is not pinned to a commit", filepath.Base(f), m[1])
			assert.Regexp(t, `#\s*v\d+\.\d+\.\d+`, m[2], "%s: %s names its version in a comment", filepath.Base(f), m[1])
		}
	}
	assert.Positive(t, n)
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}
