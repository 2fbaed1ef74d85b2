package localgw

import (
	"bytes"
	"encoding/json"
)

// exactNumbers puts the numbers of an authorizer answer's context into
// authCtx as json.Number, with the digits the authorizer wrote: decoding the
// answer into events.APIGatewayCustomAuthorizerResponse makes them float64,
// and a numeric userId above 2^53 would then reach the websocket function as
// another user's id.
func exactNumbers(answer []byte, authCtx map[string]any) {
	var raw struct {
		Context map[string]any `json:"context"`
	}
	dec := json.NewDecoder(bytes.NewReader(answer))
	dec.UseNumber()
	if dec.Decode(&raw) != nil {
		return
	}
	for k, v := range raw.Context {
		if n, ok := v.(json.Number); ok {
			authCtx[k] = n
		}
	}
}
