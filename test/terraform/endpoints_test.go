package terraform_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/gruntwork-io/terratest/modules/terraform"
	tfjson "github.com/hashicorp/terraform-json"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestManagementEndpointIgnoresCustomDomain applies the module with a custom
// domain (schema-replay provider, stand-in zips) and reads what plan cannot
// know: clients get the domain (`websocket_url`), but every sending function
// posts to the stage's execute-api endpoint, which works before the domain's
// DNS record exists and whatever fronts the name.
func TestManagementEndpointIgnoresCustomDomain(t *testing.T) {
	t.Parallel()
	// A punycode top-level domain (.xn--p1ai is .рф) is a DNS name like any.
	opts := options(t, "terraform", copyModule(t), map[string]interface{}{
		"name":               "wst-endpoints",
		"custom_domain":      map[string]interface{}{"domain_name": "ws.example.xn--p1ai", "certificate_arn": certificateARN, "api_mapping_key": "v1"},
		"distributed_fanout": map[string]interface{}{"enabled": true},
		"lambda_artifacts":   writeFakeZips(t, "websocket", "publisher", "fanout"),
	})
	terraform.InitAndApply(t, opts)
	var st tfjson.State
	require.NoError(t, json.Unmarshal([]byte(terraform.Show(t, opts)), &st))
	resources := stateResources(st.Values.RootModule)

	apiEndpoint := attr(t, resources, "aws_apigatewayv2_api.this", "api_endpoint")
	require.True(t, strings.HasPrefix(apiEndpoint, "wss://"), apiEndpoint)
	want := "https://" + strings.TrimPrefix(apiEndpoint, "wss://") + "/live"

	assert.Equal(t, "wss://ws.example.xn--p1ai/v1", terraform.Output(t, opts, "websocket_url"), "clients connect through the domain")
	assert.Equal(t, want, terraform.Output(t, opts, "management_endpoint"), "the execute-api endpoint, not the domain")
	for _, fn := range []string{"websocket", "publisher", "fanout"} {
		address := `aws_lambda_function.this["` + fn + `"]`
		env := functionEnvironment(t, resources, address)
		assert.Equalf(t, want, env["WS_MANAGEMENT_ENDPOINT"], "%s posts to the execute-api endpoint", fn)
		assert.NotContainsf(t, env["WS_MANAGEMENT_ENDPOINT"], "ws.example.xn--p1ai", "%s never posts through the custom domain", fn)
	}
}

// functionEnvironment returns the environment variables of the function at
// address in an applied state.
func functionEnvironment(t *testing.T, resources []*tfjson.StateResource, address string) map[string]string {
	t.Helper()
	for _, r := range resources {
		if r.Address != address {
			continue
		}
		blocks, ok := r.AttributeValues["environment"].([]interface{})
		require.Truef(t, ok && len(blocks) == 1, "%s: one environment block, got %#v", address, r.AttributeValues["environment"])
		vars, ok := blocks[0].(map[string]interface{})["variables"].(map[string]interface{})
		require.Truef(t, ok, "%s: environment.variables", address)
		out := map[string]string{}
		for k, v := range vars {
			out[k], _ = v.(string)
		}
		return out
	}
	require.FailNowf(t, "not in state", "%s", address)
	return nil
}
