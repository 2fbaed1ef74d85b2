// Package jsclient holds the JavaScript client (index.js, an ES module) for
// Go programs that serve it: the local gateway's demo page loads this very
// file as client.js, so the page and the published package never differ.
package jsclient

import _ "embed" // for go:embed

// Source is clients/js/index.js.
//
//go:embed index.js
var Source []byte
