package main

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReproducible builds the websocket function twice into different
// folders and checks the zips are byte-identical and hold only bootstrap.
func TestReproducible(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Lambda binary twice; run without -short")
	}
	root, err := filepath.Abs("../..")
	require.NoError(t, err)
	t.Chdir(root)
	a, b := t.TempDir(), t.TempDir()
	sumA, err := build(a, "websocket", "linux", "arm64")
	require.NoError(t, err)
	// A caller's instruction-set levels must not reach the build (they
	// would change the arm64 and x86_64 code).
	t.Setenv("GOARM64", "v9.0")
	t.Setenv("GOAMD64", "v3")
	sumB, err := build(b, "websocket", "linux", "arm64")
	require.NoError(t, err)
	assert.Equal(t, sumA, sumB, "two builds must give the same sha256")

	data, err := os.ReadFile(filepath.Join(a, "websocket.zip"))
	require.NoError(t, err)
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	require.NoError(t, err)
	require.Len(t, zr.File, 1)
	f := zr.File[0]
	assert.Equal(t, "bootstrap", f.Name)
	assert.Equal(t, os.FileMode(0o755), f.Mode().Perm())
	assert.Equal(t, fixedTime, f.Modified.UTC())
	assert.Less(t, len(data), 10<<20, "zip must stay under 10 MB")
}

func TestUnknownFunction(t *testing.T) {
	root, err := filepath.Abs("../..")
	require.NoError(t, err)
	t.Chdir(root)
	_, err = build(t.TempDir(), "nope", "linux", "arm64")
	assert.ErrorContains(t, err, `function "nope"`)
	// A name with a path would build another package and write outside -out.
	out := t.TempDir()
	for _, fn := range []string{"../../tools/package", "../cmd/websocket", "/tmp/x", "Websocket", ""} {
		_, err = build(filepath.Join(out, "dist"), fn, "linux", "arm64")
		assert.ErrorContains(t, err, "want the name of a folder of lambda/cmd", fn)
	}
	entries, err := os.ReadDir(out)
	require.NoError(t, err)
	assert.Empty(t, entries, "nothing written")
}

// TestGoFromEnvironment: the GO variable names the go binary the packager
// builds with (the Terraform module passes its go_command this way); a
// binary that does not exist fails the build and is named in the error,
// where the default "go" from PATH would have built it.
func TestGoFromEnvironment(t *testing.T) {
	root, err := filepath.Abs("../..")
	require.NoError(t, err)
	t.Chdir(root)
	missing := filepath.Join(t.TempDir(), "no-such-go")
	t.Setenv("GO", missing)
	assert.Equal(t, missing, goCommand())
	_, err = build(t.TempDir(), "websocket", "linux", "arm64")
	require.Error(t, err, "the build must use $GO, not go from PATH")
	assert.ErrorContains(t, err, missing)

	t.Setenv("GO", "")
	assert.Equal(t, "go", goCommand(), "unset or empty GO falls back to go from PATH")
}

// TestBuildIgnoresTheCallersGoEnvFile: what `go env -w` set that changes a
// binary (an experiment, the FIPS 140 module), or a Go workspace, does not reach the build,
// while its module-source settings (a proxy) do. Checked with go's own view
// of the build's environment.
func TestBuildIgnoresTheCallersGoEnvFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "go.env")
	require.NoError(t, os.WriteFile(file, []byte("GOEXPERIMENT=nogreenteagc\nGOFIPS140=v1.0.0\nGOPROXY=https://proxy.example\nGOAMD64=v3\n"), 0o644))
	t.Setenv("GOENV", file)
	t.Setenv("GO", "")
	// A workspace (godebug lines change the binary) is kept out too.
	work := filepath.Join(t.TempDir(), "go.work")
	require.NoError(t, os.WriteFile(work, []byte("go 1.26.0\n\ngodebug default=go1.24\n"), 0o644))
	t.Setenv("GOWORK", work)
	settings, err := readGoSettings()
	require.NoError(t, err)
	assert.Contains(t, settings, "GOPROXY=https://proxy.example")

	cmd := exec.Command(goCommand(), "env", "-json", "GOEXPERIMENT", "GOFIPS140", "GOPROXY", "GOAMD64", "GOWORK")
	cmd.Env = append(append(os.Environ(), settings...), buildEnv("linux", "arm64")...)
	out, err := cmd.Output()
	require.NoError(t, err)
	var got map[string]string
	require.NoError(t, json.Unmarshal(out, &got))
	assert.Equal(t, map[string]string{"GOEXPERIMENT": "", "GOFIPS140": "off", "GOPROXY": "https://proxy.example", "GOAMD64": "v1", "GOWORK": "off"}, got)
}
