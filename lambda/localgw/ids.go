package localgw

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
)

const idAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// newID returns an id shaped like API Gateway's connection, request and
// message ids: 15 base64 characters and a '=' pad ("L0SM9cOFvHcCIhw=").
// '+' and '/' are left out so the id needs no escaping in a path.
func newID() string {
	var b [15]byte
	_, _ = rand.Read(b[:])
	out := make([]byte, 16)
	for i, c := range b {
		out[i] = idAlphabet[int(c)%len(idAlphabet)]
	}
	out[15] = '='
	return string(out)
}

// newUUID returns a random version 4 UUID, the shape of Lambda request ids.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return fmt.Sprintf("%s-%s-%s-%s-%s", h[0:8], h[8:12], h[12:16], h[16:20], h[20:32])
}

// newTraceID returns an X-Ray trace id ("Root=1-5759e988-bd862e3fe1be46a994272793").
func newTraceID(epoch int64) string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("Root=1-%08x-%s", epoch, hex.EncodeToString(b[:]))
}
