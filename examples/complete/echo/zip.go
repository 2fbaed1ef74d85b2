//go:build ignore

// Command zip writes a Lambda deployment package holding the given files at
// the zip's root, with a fixed timestamp and mode so the bytes depend only on
// the contents. The complete example runs it at apply time:
//
//	go run ./echo/zip.go -out .terraform/echo.zip ./echo/index.mjs
package main

import (
	"archive/zip"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

func main() {
	out := flag.String("out", "echo.zip", "zip file to write")
	flag.Parse()
	if err := write(*out, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "zip:", err)
		os.Exit(1)
	}
}

func write(out string, files []string) error {
	if len(files) == 0 {
		return fmt.Errorf("no input files")
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return fmt.Errorf("create folder of %s: %w", out, err)
	}
	f, err := os.Create(out)
	if err != nil {
		return fmt.Errorf("create %s: %w", out, err)
	}
	zw := zip.NewWriter(f)
	for _, name := range files {
		body, err := os.ReadFile(name)
		if err != nil {
			f.Close()
			return fmt.Errorf("read %s: %w", name, err)
		}
		h := &zip.FileHeader{Name: filepath.Base(name), Method: zip.Deflate, Modified: time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)}
		h.SetMode(0o644)
		w, err := zw.CreateHeader(h)
		if err != nil {
			f.Close()
			return fmt.Errorf("add %s: %w", name, err)
		}
		if _, err := w.Write(body); err != nil {
			f.Close()
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	if err := zw.Close(); err != nil {
		f.Close()
		return fmt.Errorf("finish %s: %w", out, err)
	}
	return f.Close()
}
