//go:build e2e

package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wsforge/terraform-aws-websocket/lambda/localgw/localgwtest"
)

// TestBinaryGracefulShutdown starts the real binary, connects two clients
// and sends SIGTERM: both see 1001, $disconnect runs for each (the store is
// empty, which only the publisher can tell from outside) and the process exits 0.
func TestBinaryGracefulShutdown(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p := startBinary(t, "-log-level", "warn")
	a := localgwtest.MustDial(ctx, t, p.wsURL, "")
	b := localgwtest.MustDial(ctx, t, p.wsURL, "")
	a.Subscribe(ctx, "lobby")
	b.Subscribe(ctx, "lobby")
	resp, ferr := localgwtest.Invoke(ctx, t, localgwtest.LambdaClient(p.base), "publisher", map[string]any{"action": "stats"})
	require.Empty(t, ferr)
	require.NotNil(t, resp.Stats)
	assert.Equal(t, int64(2), resp.Stats.TotalConnections)

	require.NoError(t, p.terminate(t, ctx), "exit status after SIGTERM")
	assert.Equal(t, websocket.StatusGoingAway, localgwtest.CloseCode(a.Closed(ctx)))
	assert.Equal(t, websocket.StatusGoingAway, localgwtest.CloseCode(b.Closed(ctx)))
	assert.Contains(t, p.stdout.String(), "wslocal: stopped")
}

// TestBinarySecondSignalForcesExit: during a graceful shutdown that is
// stuck (a client that never answers the close handshake), a second SIGTERM
// ends the process at once with the signal's default action.
func TestBinarySecondSignalForcesExit(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p := startBinary(t, "-log-level", "info", "-shutdown-timeout", "10m")
	// A client that never reads: the gateway waits for its close frame.
	c, _, err := websocket.Dial(ctx, p.wsURL, nil)
	require.NoError(t, err)
	defer c.CloseNow()
	localgwtest.WaitFor(ctx, t, "connection registered", func() bool {
		return strings.Contains(p.stderr.String(), "msg=connected")
	})

	p.signal(t, syscall.SIGTERM)
	localgwtest.WaitFor(ctx, t, "graceful shutdown announced", func() bool {
		return strings.Contains(p.stderr.String(), "press Ctrl-C again to exit now")
	})
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		exit := <-p.exited
		p.exited <- exit
		t.Fatalf("wslocal exited after the first signal: %v (%v); stderr:\n%s", exit, err, p.stderr.String())
	}
	var exitErr error
	select {
	case exitErr = <-p.exited:
		p.exited <- exitErr
	case <-ctx.Done():
		t.Fatal("wslocal did not exit after a second SIGTERM")
	}
	var ee *exec.ExitError
	require.True(t, errors.As(exitErr, &ee), "exit: %v", exitErr)
	ws, ok := ee.Sys().(syscall.WaitStatus)
	require.True(t, ok)
	assert.True(t, ws.Signaled(), "killed by the second signal, not a graceful exit: %v", exitErr)
	assert.Equal(t, syscall.SIGTERM, ws.Signal())
	assert.NotContains(t, p.stdout.String(), "wslocal: stopped")
	// coder/websocket closes an unreachable Conn in a finalizer, which would
	// end the stuck close handshake: keep the client alive until here.
	runtime.KeepAlive(c)
}

// TestBinaryInterruptExitsZero: Ctrl-C (SIGINT) runs the same graceful
// shutdown as SIGTERM and the process exits 0.
func TestBinaryInterruptExitsZero(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p := startBinary(t, "-log-level", "warn")
	c := localgwtest.MustDial(ctx, t, p.wsURL, "")

	p.signal(t, syscall.SIGINT)
	require.NoError(t, p.wait(t, ctx), "exit status after SIGINT")
	assert.Equal(t, websocket.StatusGoingAway, localgwtest.CloseCode(c.Closed(ctx)))
	assert.Contains(t, p.stdout.String(), "wslocal: stopped")
}

// TestMakeDevInterrupt runs `make dev` and sends SIGINT to its process group,
// as Ctrl-C in a terminal does: wslocal shuts down gracefully and make
// reports no error (it ends by the SIGINT it got itself, as make does).
func TestMakeDevInterrupt(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.Command("make", "--no-print-directory", "dev", "WSLOCAL_ARGS=-addr 127.0.0.1:0 -log-level warn")
	cmd.Dir = filepath.Join("..", "..")
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); name != "MAKEFLAGS" && name != "MFLAGS" && name != "MAKELEVEL" {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	pgid := cmd.Process.Pid
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			_ = syscall.Kill(-pgid, syscall.SIGKILL) // the process group this test started
			<-exited
		}
	})
	localgwtest.WaitFor(ctx, t, "wslocal serving under make dev", func() bool {
		return wsURLLine.MatchString(out.String())
	})

	require.NoError(t, syscall.Kill(-pgid, syscall.SIGINT))
	var err error
	select {
	case err = <-exited:
		exited <- err
	case <-ctx.Done():
		t.Fatalf("make dev did not end after SIGINT; output:\n%s", out.String())
	}
	assert.Contains(t, out.String(), "wslocal: stopped", "graceful shutdown")
	assert.NotContains(t, out.String(), "Error", "make reports no error")
	if err != nil {
		var ee *exec.ExitError
		require.True(t, errors.As(err, &ee), "exit: %v", err)
		ws, ok := ee.Sys().(syscall.WaitStatus)
		require.True(t, ok)
		assert.True(t, ws.Signaled() && ws.Signal() == syscall.SIGINT, "make exits 0 or by the SIGINT it got, not with an error status: %v\n%s", err, out.String())
	}
}
