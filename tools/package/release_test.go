package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// writeTree writes files (slash paths relative to root) with their contents.
func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for rel, body := range files {
		p := filepath.Join(root, filepath.FromSlash(rel))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
	}
}

func hexSHA256(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// TestSourceHashDefinition pins the source hash lambda.tf recomputes: the
// sorted lines "<path>:<sha256>" of the compiled Go sources, the packager and
// go.mod/go.sum, joined by "\n"; tests, testdata, README files and the
// packages no function imports are left out.
func TestSourceHashDefinition(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"lambda/cmd/websocket/main.go":      "package main\n",
		"lambda/cmd/websocket/main_test.go": "package main\n// test\n",
		"lambda/store/store.go":             "package store\n",
		"lambda/store/README.md":            "not Go\n",
		"lambda/store/testdata/fixture.go":  "package fixture\n",
		"lambda/localgw/gateway.go":         "package localgw\n",
		"lambda/mgmtapitest/fake.go":        "package mgmtapitest\n",
		"lambda/Z.go":                       "package lambda\n",
		"tools/package/main.go":             "package main\n// packager\n",
		"tools/package/main_test.go":        "package main\n// packager test\n",
		"tools/other/main.go":               "package main\n",
		"go.mod":                            "module example\n",
		"go.sum":                            "",
	})
	files, err := SourceFiles(root)
	require.NoError(t, err)
	want := []string{"go.mod", "go.sum", "lambda/Z.go", "lambda/cmd/websocket/main.go", "lambda/store/store.go", "tools/package/main.go"}
	assert.Equal(t, want, files, "bytewise sorted, as Terraform's sort() orders them")

	var lines []string
	for _, f := range want {
		body, err := os.ReadFile(filepath.Join(root, f))
		require.NoError(t, err)
		lines = append(lines, f+":"+hexSHA256(string(body)))
	}
	hash, err := SourceHash(root)
	require.NoError(t, err)
	assert.Equal(t, hexSHA256(strings.Join(lines, "\n")), hash)

	writeTree(t, root, map[string]string{"lambda/localgw/gateway.go": "package localgw\n// edited\n", "lambda/store/store_test.go": "package store\n"})
	same, err := SourceHash(root)
	require.NoError(t, err)
	assert.Equal(t, hash, same, "edits the functions never compile keep the hash")

	writeTree(t, root, map[string]string{"lambda/store/store.go": "package store\n// edited\n"})
	changed, err := SourceHash(root)
	require.NoError(t, err)
	assert.NotEqual(t, hash, changed, "an edit of a compiled source changes the hash")
}

// TestCheckRelease: a release folder passes only when its manifest names the
// working directory's source hash and every zip has the recorded sha256.
func TestCheckRelease(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"lambda/cmd/websocket/main.go": "package main\n",
		"tools/package/main.go":        "package main\n",
		"go.mod":                       "module example\n",
		"go.sum":                       "",
	})
	t.Chdir(root)
	hash, err := SourceHash(".")
	require.NoError(t, err)
	dist := filepath.Join(root, "dist")
	writeTree(t, dist, map[string]string{"arm64/websocket.zip": "zip a", "x86_64/websocket.zip": "zip x"})
	writeManifest := func(m Manifest) {
		t.Helper()
		body, err := json.Marshal(m)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dist, ManifestFile), body, 0o644))
	}
	good := Manifest{Format: 1, SourceHash: hash, GoVersion: "go1.26.8", Functions: []string{"websocket"}, Zips: map[string]map[string]string{
		"arm64":  {"websocket": hexSHA256("zip a")},
		"x86_64": {"websocket": hexSHA256("zip x")},
	}}
	writeManifest(good)
	files, err := checkRelease(dist)
	require.NoError(t, err)
	assert.Equal(t, []string{"arm64/websocket.zip", "manifest.json", "x86_64/websocket.zip"}, files)

	other := good
	other.SourceHash = hexSHA256("other sources")
	writeManifest(other)
	_, err = checkRelease(dist)
	assert.ErrorContains(t, err, "these sources hash to "+hash)

	writeManifest(good)
	writeTree(t, dist, map[string]string{"x86_64/websocket.zip": "tampered"})
	_, err = checkRelease(dist)
	assert.ErrorContains(t, err, "zip x86_64/websocket.zip has sha256 "+hexSHA256("tampered"))

	require.NoError(t, os.Remove(filepath.Join(dist, "x86_64", "websocket.zip")))
	_, err = checkRelease(dist)
	assert.ErrorContains(t, err, "read zip x86_64/websocket.zip")

	// A function of the sources missing from the bundle: its users would
	// have to build.
	writeTree(t, root, map[string]string{"lambda/cmd/fanout/main.go": "package main\n"})
	hash, err = SourceHash(".")
	require.NoError(t, err)
	writeTree(t, dist, map[string]string{"x86_64/websocket.zip": "zip x"})
	without := good
	without.SourceHash = hash
	writeManifest(without)
	_, err = checkRelease(dist)
	assert.ErrorContains(t, err, "manifest functions [websocket]: these sources have [fanout websocket]")
	without.Functions = []string{"fanout", "websocket"}
	writeManifest(without)
	_, err = checkRelease(dist)
	assert.ErrorContains(t, err, "want one per function of these sources: [fanout websocket]")
}

// TestReleaseRefusesAnUnknownArchitectureFirst: a misspelt architecture
// (amd64) fails before anything is removed or built.
func TestReleaseRefusesAnUnknownArchitectureFirst(t *testing.T) {
	out := t.TempDir()
	writeTree(t, out, map[string]string{"manifest.json": "{}", "arm64/websocket.zip": "old"})
	t.Chdir(t.TempDir())
	_, err := release(out, []string{"arm64", "arm64"})
	require.ErrorContains(t, err, `release architecture "arm64" given twice`)
	_, err = release(out, []string{"arm64", "amd64"})
	require.ErrorContains(t, err, `release architecture "amd64": want arm64 or x86_64`)
	assert.FileExists(t, filepath.Join(out, "manifest.json"), "nothing removed")
	assert.FileExists(t, filepath.Join(out, "arm64", "websocket.zip"))
	assert.NoDirExists(t, filepath.Join(out, "assets"), "nothing built")
}
