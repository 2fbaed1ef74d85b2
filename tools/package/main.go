// Command package builds the Lambda functions as reproducible zips: for each
// function it cross-compiles lambda/cmd/<fn> into a static `bootstrap`
// (CGO_ENABLED=0, -trimpath, -tags lambda.norpc, -ldflags "-s -w -buildid=")
// and zips that one file with a fixed timestamp and mode, so two builds of the
// same sources give the same sha256. It compiles with the go binary named by
// the GO environment variable, or "go" from PATH when GO is unset.
//
//	go run ./tools/package -out dist -arch arm64 websocket authorizer publisher
//
// With -release DIR it builds a release instead: every function of
// lambda/cmd for each architecture of -release-archs into
// DIR/<arch>/<function>.zip, DIR/manifest.json (the source hash they were
// built from, the Go version and each zip's sha256), and the release assets in
// DIR/assets (<function>-<arch>.zip, SHA256SUMS, manifest.json). With
// -source-hash it prints the source hash of the module in the working
// directory: the value the Terraform module compares with the manifest. With
// -check-release DIR it checks that DIR's manifest was built from the sources
// in the working directory and that every zip has the sha256 it records, and
// lists DIR's release files.
//
//	go run ./tools/package -release dist
//	go run ./tools/package -source-hash
//	go run ./tools/package -check-release dist
package main

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"
)

// functionName is what a function's name may be: a folder of lambda/cmd.
var functionName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)

// fixedTime is the timestamp of every zip entry (the earliest DOS date).
var fixedTime = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)

func main() {
	out := flag.String("out", "dist", "output folder: <out>/<fn>.zip and <out>/<fn>/bootstrap")
	arch := flag.String("arch", "arm64", "GOARCH of the binaries: arm64 (default, Graviton) or amd64")
	goos := flag.String("os", "linux", "GOOS of the binaries (linux for Lambda; the host's to run them locally)")
	releaseDir := flag.String("release", "", "build a release into this folder: <dir>/<arch>/<fn>.zip for every function, manifest.json, assets/")
	releaseArchs := flag.String("release-archs", "arm64,x86_64", "comma-separated Lambda architectures of -release")
	printHash := flag.Bool("source-hash", false, "print the source hash of the module in the working directory and exit")
	checkDir := flag.String("check-release", "", "check that this release folder was built from the sources in the working directory and list its files")
	flag.Parse()
	if *checkDir != "" {
		files, err := checkRelease(*checkDir)
		if err != nil {
			fmt.Fprintf(os.Stderr, "package: check release %s: %v\n", *checkDir, err)
			os.Exit(1)
		}
		fmt.Println(strings.Join(files, "\n"))
		return
	}
	if *printHash {
		hash, err := SourceHash(".")
		if err != nil {
			fmt.Fprintln(os.Stderr, "package:", err)
			os.Exit(1)
		}
		fmt.Println(hash)
		return
	}
	if *releaseDir != "" {
		if flag.NArg() > 0 {
			fmt.Fprintf(os.Stderr, "package: -release builds every function: unexpected arguments %q (-release-archs takes a comma-separated list)\n", flag.Args())
			os.Exit(2)
		}
		m, err := release(*releaseDir, strings.Split(*releaseArchs, ","))
		if err != nil {
			fmt.Fprintln(os.Stderr, "package: release:", err)
			os.Exit(1)
		}
		fmt.Printf("release of source %s built with %s in %s\n", m.SourceHash, m.GoVersion, *releaseDir)
		return
	}
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: package [-out dist] [-arch arm64|amd64] function...")
		os.Exit(2)
	}
	if *arch != "arm64" && *arch != "amd64" {
		fmt.Fprintf(os.Stderr, "package: -arch %q: want arm64 or amd64\n", *arch)
		os.Exit(2)
	}
	for _, fn := range flag.Args() {
		sum, err := build(*out, fn, *goos, *arch)
		if err != nil {
			fmt.Fprintln(os.Stderr, "package:", err)
			os.Exit(1)
		}
		fmt.Printf("%s  %s\n", sum, filepath.Join(*out, fn+".zip"))
	}
}

// buildEnv overrides the caller's environment wherever it would change the
// binary: the target, cgo, VCS stamping, the instruction-set levels (GOAMD64,
// GOARM64, whose defaults Lambda's CPUs run), experiments and the FIPS 140
// module. A release zip rebuilt on another machine must match SHA256SUMS
// byte for byte. GOENV=off drops the caller's `go env -w` file, which an
// empty variable does not override (GOEXPERIMENT= would fall back to it);
// the settings of that file that only say where modules come from and where
// caches live come back through goSettings. GOWORK=off keeps a Go workspace
// (GOWORK, or a go.work in a parent folder) out: its godebug lines, for one,
// change the binary's default GODEBUG.
func buildEnv(goos, arch string) []string {
	return []string{"GOENV=off", "GOWORK=off", "CGO_ENABLED=0", "GOOS=" + goos, "GOARCH=" + arch, "GOFLAGS=-buildvcs=false",
		"GOAMD64=v1", "GOARM64=v8.0", "GOEXPERIMENT=", "GOFIPS140=off"}
}

// passedSettings are the go settings that never change a binary: module
// sources and their checks, caches, the toolchain choice.
var passedSettings = []string{
	"GOPROXY", "GONOPROXY", "GOPRIVATE", "GONOSUMDB", "GOSUMDB", "GOINSECURE", "GOAUTH", "GOVCS",
	"GOPATH", "GOMODCACHE", "GOCACHE", "GOTMPDIR", "GOTOOLCHAIN",
}

// goSettings returns passedSettings as the caller's go sees them (from the
// environment or `go env -w`), as KEY=value, for a build with GOENV=off: a
// proxy or private-module setting made with `go env -w` keeps working.
var goSettings = sync.OnceValues(readGoSettings)

func readGoSettings() ([]string, error) {
	out, err := exec.Command(goCommand(), append([]string{"env", "-json"}, passedSettings...)...).Output()
	if err != nil {
		return nil, fmt.Errorf("read the go settings of %s: %w", goCommand(), err)
	}
	var values map[string]string
	if err := json.Unmarshal(out, &values); err != nil {
		return nil, fmt.Errorf("read the go settings of %s: %w", goCommand(), err)
	}
	env := make([]string, 0, len(passedSettings))
	for _, k := range passedSettings {
		if v := values[k]; v != "" {
			env = append(env, k+"="+v)
		}
	}
	return env, nil
}

func build(out, fn, goos, arch string) (string, error) {
	// A function is a folder of lambda/cmd, named as one: a name with a
	// path in it would build another package and write outside out.
	if !functionName.MatchString(fn) {
		return "", fmt.Errorf("function %q: want the name of a folder of lambda/cmd (lower-case letters, digits and '-')", fn)
	}
	src := "./lambda/cmd/" + fn
	if _, err := os.Stat(src); err != nil {
		return "", fmt.Errorf("function %q: no folder %s", fn, src)
	}
	binDir := filepath.Join(out, fn)
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return "", err
	}
	bin := filepath.Join(binDir, "bootstrap")
	cmd := exec.Command(goCommand(), "build", "-trimpath", "-tags", "lambda.norpc", "-buildvcs=false",
		"-ldflags=-s -w -buildid=", "-o", bin, src)
	settings, err := goSettings()
	if err != nil {
		return "", err
	}
	cmd.Env = append(append(os.Environ(), settings...), buildEnv(goos, arch)...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build %s with %s: %w", fn, cmd.Path, err)
	}
	data, err := zipBootstrap(bin)
	if err != nil {
		return "", fmt.Errorf("zip %s: %w", fn, err)
	}
	zipPath := filepath.Join(out, fn+".zip")
	tmp := zipPath + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, zipPath); err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}

// goCommand is the go binary to build with: $GO when set (the Terraform
// module passes its go_command this way), else "go" from PATH.
func goCommand() string {
	if g := os.Getenv("GO"); g != "" {
		return g
	}
	return "go"
}

func zipBootstrap(bin string) ([]byte, error) {
	f, err := os.Open(bin)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	hdr := &zip.FileHeader{Name: "bootstrap", Method: zip.Deflate, Modified: fixedTime}
	hdr.SetMode(0o755)
	w, err := zw.CreateHeader(hdr)
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(w, f); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
