package main

import (
	"archive/zip"
	"bytes"
	"os"
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
}
