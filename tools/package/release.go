package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// ManifestFile is the release manifest's name inside a release folder
// (dist/manifest.json in a bundled release tree); the Terraform module reads
// it to decide whether the bundled zips were built from its own sources.
const ManifestFile = "manifest.json"

// SumsFile is the checksum file published with the release assets, in
// sha256sum's format over the assets' flat names (<function>-<arch>.zip).
const SumsFile = "SHA256SUMS"

// lambdaArchs maps Lambda's architecture names, which the release folders and
// the module's lambda_architecture use, to GOARCH.
var lambdaArchs = map[string]string{"arm64": "arm64", "x86_64": "amd64"}

// Manifest describes a release folder: the source hash the zips were built
// from and each zip's sha256, per Lambda architecture and function.
type Manifest struct {
	// Format is the manifest version (1).
	Format int `json:"format"`
	// SourceHash is SourceHash of the tree the zips were built from.
	SourceHash string `json:"source_hash"`
	// GoVersion is the toolchain that compiled them (`go env GOVERSION`):
	// the version a rebuild needs to give the same bytes.
	GoVersion string `json:"go_version"`
	// Functions are the functions in every architecture folder.
	Functions []string `json:"functions"`
	// Zips maps architecture, then function, to the zip's lowercase hex sha256.
	Zips map[string]map[string]string `json:"zips"`
}

// SourceFiles lists, sorted bytewise, the files whose contents go into a
// bootstrap binary, as slash-separated paths relative to root: lambda/**/*.go
// except *_test.go, anything under a testdata folder, and the packages no
// function imports (lambda/localgw, lambda/mgmtapitest); tools/package/*.go
// except tests; go.mod and go.sum. lambda.tf selects the same files.
func SourceFiles(root string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(filepath.Join(root, "lambda"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if strings.HasSuffix(rel, ".go") && !strings.HasSuffix(rel, "_test.go") &&
			!strings.HasPrefix(rel, "lambda/localgw/") && !strings.HasPrefix(rel, "lambda/mgmtapitest/") &&
			!strings.Contains(rel, "/testdata/") {
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list lambda sources in %s: %w", root, err)
	}
	tools, err := filepath.Glob(filepath.Join(root, "tools", "package", "*.go"))
	if err != nil {
		return nil, fmt.Errorf("list packager sources in %s: %w", root, err)
	}
	for _, p := range tools {
		if !strings.HasSuffix(p, "_test.go") {
			files = append(files, path.Join("tools/package", filepath.Base(p)))
		}
	}
	files = append(files, "go.mod", "go.sum")
	sort.Strings(files)
	return files, nil
}

// SourceHash is the lowercase hex sha256 of the lines
// "<path>:<hex sha256 of the file>" of SourceFiles(root), joined by "\n" with
// no trailing newline. lambda.tf computes the same value (local.source_hash)
// with fileset, filesha256 and sha256.
func SourceHash(root string) (string, error) {
	files, err := SourceFiles(root)
	if err != nil {
		return "", err
	}
	lines := make([]string, 0, len(files))
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(f)))
		if err != nil {
			return "", fmt.Errorf("hash source %s: %w", f, err)
		}
		sum := sha256.Sum256(data)
		lines = append(lines, f+":"+hex.EncodeToString(sum[:]))
	}
	sum := sha256.Sum256([]byte(strings.Join(lines, "\n")))
	return hex.EncodeToString(sum[:]), nil
}

// releaseFunctions lists the functions of the module (lambda/cmd/*), sorted.
func releaseFunctions(root string) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(root, "lambda", "cmd"))
	if err != nil {
		return nil, fmt.Errorf("list functions: %w", err)
	}
	var fns []string
	for _, e := range entries {
		if e.IsDir() {
			fns = append(fns, e.Name())
		}
	}
	return fns, nil
}

// release builds every function for each Lambda architecture in archs into
// out/<arch>/<fn>.zip (the bootstrap binaries are removed), writes
// out/manifest.json, and stages the release assets in out/assets: the zips
// under flat names <fn>-<arch>.zip, SHA256SUMS over them, and the manifest.
// It runs in the module root (the working directory).
func release(out string, archs []string) (*Manifest, error) {
	// Every architecture is checked before anything is removed or built, so
	// a misspelt one (amd64) leaves no half-written release.
	seen := map[string]bool{}
	for _, arch := range archs {
		if _, ok := lambdaArchs[arch]; !ok {
			return nil, fmt.Errorf("release architecture %q: want arm64 or x86_64", arch)
		}
		if seen[arch] {
			return nil, fmt.Errorf("release architecture %q given twice", arch)
		}
		seen[arch] = true
	}
	// A previous release's files go first: an architecture left from it
	// would sit next to a manifest that does not list it.
	for _, p := range []string{"arm64", "x86_64", "assets", ManifestFile} {
		if err := os.RemoveAll(filepath.Join(out, p)); err != nil {
			return nil, fmt.Errorf("remove the previous release's %s: %w", p, err)
		}
	}
	root := "."
	hash, err := SourceHash(root)
	if err != nil {
		return nil, err
	}
	fns, err := releaseFunctions(root)
	if err != nil {
		return nil, err
	}
	goVersion, err := exec.Command(goCommand(), "env", "GOVERSION").Output()
	if err != nil {
		return nil, fmt.Errorf("read the version of %s: %w", goCommand(), err)
	}
	m := &Manifest{Format: 1, SourceHash: hash, GoVersion: strings.TrimSpace(string(goVersion)), Functions: fns, Zips: map[string]map[string]string{}}
	assets := filepath.Join(out, "assets")
	if err := os.MkdirAll(assets, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", assets, err)
	}
	var sums []string
	for _, arch := range archs {
		goarch := lambdaArchs[arch]
		m.Zips[arch] = map[string]string{}
		dir := filepath.Join(out, arch)
		for _, fn := range fns {
			sum, err := build(dir, fn, "linux", goarch)
			if err != nil {
				return nil, err
			}
			if err := os.RemoveAll(filepath.Join(dir, fn)); err != nil {
				return nil, fmt.Errorf("remove the bootstrap of %s/%s: %w", arch, fn, err)
			}
			m.Zips[arch][fn] = sum
			asset := fn + "-" + arch + ".zip"
			if err := copyFile(filepath.Join(dir, fn+".zip"), filepath.Join(assets, asset)); err != nil {
				return nil, err
			}
			sums = append(sums, sum+"  "+asset)
		}
	}
	sort.Slice(sums, func(i, j int) bool { return sums[i][66:] < sums[j][66:] })
	body, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	body = append(body, '\n')
	for _, p := range []string{filepath.Join(out, ManifestFile), filepath.Join(assets, ManifestFile)} {
		if err := os.WriteFile(p, body, 0o644); err != nil {
			return nil, fmt.Errorf("write %s: %w", p, err)
		}
	}
	var b bytes.Buffer
	for _, s := range sums {
		b.WriteString(s + "\n")
	}
	if err := os.WriteFile(filepath.Join(assets, SumsFile), b.Bytes(), 0o644); err != nil {
		return nil, fmt.Errorf("write %s: %w", SumsFile, err)
	}
	return m, nil
}

func copyFile(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	if err := os.WriteFile(dst, data, 0o644); err != nil {
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	return nil
}

// checkRelease verifies a release folder against the module in the working
// directory: the manifest's source hash is these sources' hash, and every zip
// it names is in dir/<arch>/<fn>.zip with its sha256. It returns the folder's
// release files relative to dir, sorted: manifest.json and the zips.
func checkRelease(dir string) ([]string, error) {
	body, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	var m Manifest
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("decode manifest %s: %w", filepath.Join(dir, ManifestFile), err)
	}
	hash, err := SourceHash(".")
	if err != nil {
		return nil, err
	}
	if m.SourceHash != hash {
		return nil, fmt.Errorf("manifest source hash %s: these sources hash to %s", m.SourceHash, hash)
	}
	if len(m.Zips) == 0 {
		return nil, fmt.Errorf("manifest %s lists no zips", filepath.Join(dir, ManifestFile))
	}
	// Every function of these sources, for every architecture: a bundle
	// without one would send its users back to building.
	fns, err := releaseFunctions(".")
	if err != nil {
		return nil, err
	}
	if !slices.Equal(m.Functions, fns) {
		return nil, fmt.Errorf("manifest functions %v: these sources have %v", m.Functions, fns)
	}
	files := []string{ManifestFile}
	for arch, zips := range m.Zips {
		if _, ok := lambdaArchs[arch]; !ok {
			return nil, fmt.Errorf("manifest architecture %q: want arm64 or x86_64", arch)
		}
		if got := slices.Sorted(maps.Keys(zips)); !slices.Equal(got, fns) {
			return nil, fmt.Errorf("manifest zips of %s: %v, want one per function of these sources: %v", arch, got, fns)
		}
		for fn, want := range zips {
			rel := arch + "/" + fn + ".zip"
			data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(rel)))
			if err != nil {
				return nil, fmt.Errorf("read zip %s: %w", rel, err)
			}
			sum := sha256.Sum256(data)
			if got := hex.EncodeToString(sum[:]); got != want {
				return nil, fmt.Errorf("zip %s has sha256 %s, the manifest says %s", rel, got, want)
			}
			files = append(files, rel)
		}
	}
	sort.Strings(files)
	return files, nil
}
