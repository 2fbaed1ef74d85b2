package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/wsforge/terraform-aws-websocket/lambda/mgmtapitest"
)

// runHandshake measures what a sender's new connection costs its process:
// client CPU (user+system, getrusage) per TCP connect, TLS handshake, one
// request and its answer, and close, against the stand-in in a process of
// its own, with Go's default key exchange (the hybrid post-quantum
// X25519MLKEM768, which the sender keeps) and with X25519 alone, each with a
// full handshake and resumed from a session ticket (as all but a cold
// sender's first connections are); and the same request on an open
// connection, so the difference is the connection's own cost. A cold
// sender opens up to its concurrency (256) of them before it posts at the
// limit: that is the ramp of docs/benchmarks.md, "Where the points go".
func runHandshake(args []string) error {
	fs := flag.NewFlagSet("handshake", flag.ExitOnError)
	n := fs.Int("n", 1000, "connections (or requests) per row")
	procs := fs.Int("client-gomaxprocs", sendingGOMAXPROCS, "GOMAXPROCS while measuring (a sending function's)")
	_ = fs.Parse(args)
	if *n <= 0 {
		return errors.New("-n must be positive")
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	sf := serverFlags{latency: mgmtapitest.DefaultLatency, rate: 0, burst: 100, gogc: "400", tls: true, verify: true}
	si, err := startStandIn(exe, sf)
	if err != nil {
		return err
	}
	defer si.stop()
	u, err := url.Parse(si.endpoint)
	if err != nil {
		return err
	}
	roots, err := loadRootCAs(si.caFile)
	if err != nil {
		return err
	}
	prev := runtime.GOMAXPROCS(*procs)
	defer runtime.GOMAXPROCS(prev)

	type row struct {
		exchange, conn string
		cost
	}
	var rows []row
	open, err := measureRequests(u.Host, tlsConfig(u.Hostname(), roots, nil, nil), *n)
	if err != nil {
		return err
	}
	for _, kx := range []struct {
		name   string
		curves []tls.CurveID
	}{{"Go's default (X25519MLKEM768, X25519)", nil}, {"X25519 alone", []tls.CurveID{tls.X25519}}} {
		for _, resumed := range []bool{false, true} {
			var cache tls.ClientSessionCache
			conn := "full handshake"
			if resumed {
				cache, conn = tls.NewLRUClientSessionCache(16), "resumed (session ticket)"
			}
			cfg := tlsConfig(u.Hostname(), roots, kx.curves, cache)
			c, err := measureConnections(u.Host, cfg, *n, resumed)
			if err != nil {
				return fmt.Errorf("%s, %s: %w", kx.name, conn, err)
			}
			rows = append(rows, row{kx.name, conn, c})
		}
	}
	fmt.Printf("Client CPU (user+system) at GOMAXPROCS %d per new connection to the stand-in (HTTPS, its own process): TCP connect, TLS 1.3 handshake, one request and its answer, close; %d per row. Last row: the same request on an open connection.\n\n", *procs, *n)
	b := &strings.Builder{}
	b.WriteString("| key exchange | connection | client CPU per connection | more than a request on an open connection | wall time per connection |\n| --- | --- | ---: | ---: | ---: |\n")
	for _, r := range rows {
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s |\n", r.exchange, r.conn, micro(r.cpu), micro(r.cpu-open.cpu), micro(r.wall))
	}
	fmt.Fprintf(b, "| - | request on an open connection | %s | - | %s |\n", micro(open.cpu), micro(open.wall))
	fmt.Print(b.String())
	return nil
}

// micro formats d in whole microseconds.
func micro(d time.Duration) string { return fmt.Sprintf("%d µs", d.Microseconds()) }

func tlsConfig(host string, roots *x509.CertPool, curves []tls.CurveID, cache tls.ClientSessionCache) *tls.Config {
	return &tls.Config{ServerName: host, RootCAs: roots, MinVersion: tls.VersionTLS12, CurvePreferences: curves,
		ClientSessionCache: cache, NextProtos: []string{"http/1.1"}}
}

// cost is the client CPU and wall time of one connection or request.
type cost struct{ cpu, wall time.Duration }

// costSince is the cost of each of n operations since cpu0 and t0.
func costSince(cpu0 time.Duration, t0 time.Time, n int) cost {
	return cost{(processCPU() - cpu0) / time.Duration(n), time.Since(t0) / time.Duration(n)}
}

// measureConnections opens n connections one after another, each with a
// request, and returns the cost per connection. With
// resumed, a first connection fetches the session ticket the others use,
// and each one checks that it resumed.
func measureConnections(addr string, cfg *tls.Config, n int, resumed bool) (cost, error) {
	one := func(wantResumed bool) error {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			return err
		}
		c := tls.Client(nc, cfg)
		defer c.Close()
		if err := c.Handshake(); err != nil {
			return err
		}
		if wantResumed && !c.ConnectionState().DidResume {
			return errors.New("the handshake did not resume")
		}
		// The answer carries the session ticket (read with it) for the next.
		return request(bufio.NewReader(c), c)
	}
	if err := one(false); err != nil {
		return cost{}, err
	}
	runtime.GC()
	cpu0, t0 := processCPU(), time.Now()
	for range n {
		if err := one(resumed); err != nil {
			return cost{}, err
		}
	}
	return costSince(cpu0, t0, n), nil
}

// measureRequests makes n requests on one open connection.
func measureRequests(addr string, cfg *tls.Config, n int) (cost, error) {
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return cost{}, err
	}
	defer c.Close()
	br := bufio.NewReader(c)
	if err := request(br, c); err != nil {
		return cost{}, err
	}
	runtime.GC()
	cpu0, t0 := processCPU(), time.Now()
	for range n {
		if err := request(br, c); err != nil {
			return cost{}, err
		}
	}
	return costSince(cpu0, t0, n), nil
}

// request asks the stand-in for its counts (answered at once, without the
// management API's latency) and reads the whole answer.
func request(br *bufio.Reader, w io.Writer) error {
	if _, err := io.WriteString(w, "GET "+mgmtapitest.CountsPath+" HTTP/1.1\r\nHost: stand-in\r\n\r\n"); err != nil {
		return err
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("stand-in answered %s", resp.Status)
	}
	return err
}
