package localgw

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-lambda-go/events"
)

// authorizerOutput is a Lambda authorizer's answer as API Gateway reads it.
// IAM's policy grammar lets Action and Resource be one string or an array of
// strings, and Statement one object or an array; AWS's documented example
// answer uses the plain strings, which events.IAMPolicyStatement (arrays
// only) refuses.
type authorizerOutput struct {
	PrincipalID    string `json:"principalId"`
	PolicyDocument struct {
		Version   string        `json:"Version"`
		Statement statementList `json:"Statement"`
	} `json:"policyDocument"`
	Context            map[string]any `json:"context"`
	UsageIdentifierKey string         `json:"usageIdentifierKey"`
}

// response converts the answer to aws-lambda-go's type, which auth.HTTPStatus evaluates.
func (o authorizerOutput) response() events.APIGatewayCustomAuthorizerResponse {
	resp := events.APIGatewayCustomAuthorizerResponse{
		PrincipalID:        o.PrincipalID,
		PolicyDocument:     events.APIGatewayCustomAuthorizerPolicy{Version: o.PolicyDocument.Version},
		Context:            o.Context,
		UsageIdentifierKey: o.UsageIdentifierKey,
	}
	for _, st := range o.PolicyDocument.Statement {
		resp.PolicyDocument.Statement = append(resp.PolicyDocument.Statement, events.IAMPolicyStatement{
			Action: st.Action, Effect: st.Effect, Resource: st.Resource,
		})
	}
	return resp
}

// policyStatement is one statement of a policy.
type policyStatement struct {
	Action   stringOrList `json:"Action"`
	Effect   string       `json:"Effect"`
	Resource stringOrList `json:"Resource"`
}

// statementList is a policy's Statement: one object or an array of them.
type statementList []policyStatement

// UnmarshalJSON implements json.Unmarshaler.
func (l *statementList) UnmarshalJSON(b []byte) error {
	many, err := oneOrMany[policyStatement](b, '{')
	*l = many
	return err
}

// stringOrList is a policy element that is one string or an array of strings.
type stringOrList []string

// UnmarshalJSON implements json.Unmarshaler.
func (l *stringOrList) UnmarshalJSON(b []byte) error {
	many, err := oneOrMany[string](b, '"')
	*l = many
	return err
}

// oneOrMany decodes b as one T (a JSON value starting with first) or an array of them.
func oneOrMany[T any](b []byte, first byte) ([]T, error) {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == first {
		var one T
		if err := json.Unmarshal(b, &one); err != nil {
			return nil, err
		}
		return []T{one}, nil
	}
	var many []T
	if err := json.Unmarshal(b, &many); err != nil {
		return nil, fmt.Errorf("policy element: want one value or an array: %w", err)
	}
	return many, nil
}
