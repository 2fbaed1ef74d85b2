//go:build e2e || load

package main

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// wslocalProcess is the wslocal binary running as a child process.
type wslocalProcess struct {
	cmd    *exec.Cmd
	wsURL  string
	base   string
	exited chan error
	stdout *syncBuffer
	stderr *syncBuffer
}

// startBinary builds wslocal once and starts it with args plus -addr
// 127.0.0.1:0; it returns once the URLs are printed. Cleanup kills the
// process by its PID if the test did not stop it.
func startBinary(t *testing.T, args ...string) *wslocalProcess {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "wslocal-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "wslocal")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = &exec.ExitError{Stderr: out}
		}
	})
	require.NoError(t, buildErr, "build wslocal")
	cmd := exec.Command(binPath, append([]string{"-addr", "127.0.0.1:0"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	p := &wslocalProcess{cmd: cmd, exited: make(chan error, 1), stdout: &syncBuffer{}, stderr: &syncBuffer{}}
	cmd.Stderr = io.MultiWriter(os.Stderr, p.stderr)
	require.NoError(t, cmd.Start())
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			_, _ = p.stdout.Write([]byte(line + "\n"))
			if m := wsURLLine.FindStringSubmatch(line); m != nil {
				urls <- m[1]
			}
		}
	}()
	go func() { p.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = cmd.Process.Kill()
			<-p.exited
		}
	})
	select {
	case p.wsURL = <-urls:
	case err := <-p.exited:
		t.Fatalf("wslocal exited before serving: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("wslocal printed no WebSocket URL")
	}
	p.base = "http://" + strings.SplitN(strings.TrimPrefix(p.wsURL, "ws://"), "/", 2)[0]
	return p
}

// signal sends sig to the process by its PID.
func (p *wslocalProcess) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(sig))
}

// terminate sends SIGTERM to the process (by PID) and waits for it to exit.
func (p *wslocalProcess) terminate(t *testing.T, ctx context.Context) error {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	return p.wait(t, ctx)
}

// wait waits for the process to exit and returns its exit error.
func (p *wslocalProcess) wait(t *testing.T, ctx context.Context) error {
	t.Helper()
	select {
	case err := <-p.exited:
		p.exited <- err
		return err
	case <-ctx.Done():
		t.Fatalf("wslocal did not exit: %v", ctx.Err())
		return nil
	}
}
