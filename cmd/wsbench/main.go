// Command wsbench runs the project's benchmarks and prints markdown tables
// for docs/benchmarks.md:
//
//	wsbench fanout   fan-out strategies against the management API stand-in
//	                 (table, artifacts/fanout.json, artifacts/benchmarks-rate.svg)
//	wsbench workers  k fan-out worker processes sharing one stand-in's limit
//	                 (lambda/fanout's Enqueuer and Worker), with and without the rate hint
//	wsbench small    N = 100 and 1,000 on a cold and on a warm sender, against the ideal
//	wsbench lambda   zipped bootstrap sizes and start-up time of each function
//	wsbench dynamo   DynamoDB requests per operation and channel/user lookups
//	                 at scale, against DynamoDB Local (-endpoint or WS_DYNAMODB_ENDPOINT)
//	wsbench handshake  client CPU per new connection (TCP, TLS handshake full
//	                 and resumed, with and without the post-quantum key exchange)
//	wsbench chart    the rate chart of the first fan-out table in a markdown file
//	                 (default docs/benchmarks.md -> docs/benchmarks-rate.svg)
//
// fanout runs the stand-in server and each measurement in processes of their
// own (wsbench serve, wsbench client), so that a measurement's memory is its
// own and a strategy's leftovers (goroutines, sockets) cannot slow the next.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	args := os.Args[2:]
	switch os.Args[1] {
	case "fanout":
		err = runFanout(args)
	case "serve":
		err = runServe(args)
	case "client":
		err = runClient(args)
	case "workers":
		err = runWorkers(args)
	case "worker":
		err = runWorker(args)
	case "small":
		err = runSmall(args)
	case "small-client":
		err = runSmallClient(args)
	case "lambda":
		err = runLambda(args)
	case "dynamo":
		err = runDynamo(args)
	case "chart":
		err = runChart(args)
	case "handshake":
		err = runHandshake(args)
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "wsbench:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: wsbench fanout|workers|small|handshake|lambda|dynamo|chart [flags]   (wsbench <cmd> -h for flags)")
	os.Exit(2)
}
