package main

import (
	"archive/zip"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// lambdaEnv is the environment each function needs to reach its first poll
// without network access: fake credentials, a region, inline settings.
var lambdaEnv = map[string][]string{
	"websocket":  {"WS_TABLE_NAME=bench", "WS_MANAGEMENT_ENDPOINT=https://example.execute-api.us-east-1.amazonaws.com/prod"},
	"publisher":  {"WS_TABLE_NAME=bench", "WS_MANAGEMENT_ENDPOINT=https://example.execute-api.us-east-1.amazonaws.com/prod"},
	"fanout":     {"WS_TABLE_NAME=bench", "WS_MANAGEMENT_ENDPOINT=https://example.execute-api.us-east-1.amazonaws.com/prod"},
	"authorizer": {"WS_JWT_SECRET=bench-secret-bench-secret-bench-secret"},
}

// runLambda packages the functions for arm64 (sizes) and for the host
// (start-up), then starts each host bootstrap -runs times against a Runtime
// API listener and records the time from process start to its first
// GET /2018-06-01/runtime/invocation/next.
func runLambda(args []string) error {
	fs := flag.NewFlagSet("lambda", flag.ExitOnError)
	fns := fs.String("functions", "websocket,authorizer,publisher,fanout,deployer", "comma-separated functions under lambda/cmd")
	runs := fs.Int("runs", 20, "start-ups measured per function")
	hostArch := fs.String("host-arch", "amd64", "GOARCH of the binaries started on this machine")
	maxZip := fs.Float64("max-zip-mb", 0, "fail when a zip exceeds this many MB (0 = report only)")
	_ = fs.Parse(args)
	functions := strings.Split(*fns, ",")

	tmp, err := os.MkdirTemp("", "wsbench-lambda-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	armDir, hostDir := filepath.Join(tmp, "arm64"), filepath.Join(tmp, *hostArch)
	for _, p := range []struct{ dir, arch string }{{armDir, "arm64"}, {hostDir, *hostArch}} {
		cmd := exec.Command("go", append([]string{"run", "./tools/package", "-out", p.dir, "-arch", p.arch}, functions...)...)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("package %s: %w", p.arch, err)
		}
	}
	fmt.Printf("Zipped `bootstrap` per function (linux/arm64, `go run ./tools/package -out DIR -arch arm64 %s`) and start-up on this machine (linux/%s build, process start to first Runtime API poll, %d runs):\n\n", strings.Join(functions, " "), *hostArch, *runs)
	fmt.Println("| function | zip | bootstrap (unzipped) | start-up median | p90 | min | max |")
	fmt.Println("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, fn := range functions {
		zipPath := filepath.Join(armDir, fn+".zip")
		zs, err := os.Stat(zipPath)
		if err != nil {
			return err
		}
		if *maxZip > 0 && float64(zs.Size()) > *maxZip*1e6 {
			return fmt.Errorf("%s.zip is %s, above -max-zip-mb %.0f", fn, mbytes(zs.Size()), *maxZip)
		}
		unz, err := unzippedSize(zipPath)
		if err != nil {
			return err
		}
		var times []time.Duration
		for range *runs {
			d, err := startup(filepath.Join(hostDir, fn, "bootstrap"), lambdaEnv[fn])
			if err != nil {
				return fmt.Errorf("%s: %w", fn, err)
			}
			times = append(times, d)
		}
		slices.Sort(times)
		ms := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/1e6) }
		fmt.Printf("| %s | %s | %s | %s | %s | %s | %s |\n", fn, mbytes(zs.Size()), mbytes(unz), ms(times[len(times)/2]), ms(times[len(times)*9/10]), ms(times[0]), ms(times[len(times)-1]))
	}
	return nil
}

func mbytes(n int64) string { return fmt.Sprintf("%.2f MB", float64(n)/1e6) }

func unzippedSize(path string) (int64, error) {
	r, err := zip.OpenReader(path)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	var n int64
	for _, f := range r.File {
		n += int64(f.UncompressedSize64)
	}
	return n, nil
}

// startup runs bin with AWS_LAMBDA_RUNTIME_API pointing at a listener and
// returns the time until its first poll for an invocation.
func startup(bin string, env []string) (time.Duration, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	polled := make(chan time.Time, 1)
	var once sync.Once
	release := make(chan struct{})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Path == "/2018-06-01/runtime/invocation/next" {
			once.Do(func() { polled <- time.Now() })
			<-release // hold the poll, as Lambda does between invocations
			return
		}
		w.WriteHeader(http.StatusAccepted)
	})}
	go func() { _ = srv.Serve(ln) }()
	defer func() {
		close(release)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()

	cmd := exec.Command(bin)
	cmd.Env = append([]string{
		"AWS_LAMBDA_RUNTIME_API=" + ln.Addr().String(),
		"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=bench", "AWS_SECRET_ACCESS_KEY=bench",
		"AWS_LAMBDA_FUNCTION_NAME=bench", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=512",
		"AWS_EC2_METADATA_DISABLED=true", "HOME=" + os.TempDir(), "PATH=/usr/bin:/bin",
	}, env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Kill()
		<-exited
	}()
	select {
	case at := <-polled:
		return at.Sub(start), nil
	case err := <-exited:
		exited <- err
		return 0, fmt.Errorf("exited before polling (%v): %s", err, stderr.String())
	case <-time.After(10 * time.Second):
		return 0, errors.New("no poll within 10 s")
	}
}
