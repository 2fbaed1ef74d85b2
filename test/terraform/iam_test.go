package terraform_test

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/gruntwork-io/terratest/modules/terraform"
	tfjson "github.com/hashicorp/terraform-json"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestIAMPoliciesAreLeastPrivilege applies the module with every permission
// bearing option on (against the schema-replay provider, which fills ARNs with
// distinct placeholders and needs no credentials; prebuilt stand-in zips, so
// nothing is compiled) and inspects the rendered policies: no `*` in any
// action, and every resource is one of this module's own resources or an input
// the caller named, with X-Ray's resource "*" as the single exception.
func TestIAMPoliciesAreLeastPrivilege(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		vars      map[string]interface{}
		functions []string
		// inputs are resources the caller named, allowed in policies as given.
		inputs []string
		// decryptKey: the authorizer gets kms:Decrypt for its key source.
		decryptKey bool
	}{
		{
			name: "jwt from Secrets Manager with a customer key, events on an existing bus, tracing, table key",
			vars: map[string]interface{}{
				"authorizer":      map[string]interface{}{"mode": "jwt", "jwt": map[string]interface{}{"secret_arn": jwtSecretARN, "kms_key_arn": keyARN}},
				"event_bus":       map[string]interface{}{"name": existingEventBusARN},
				"tracing_enabled": true,
				"dynamodb":        map[string]interface{}{"kms_key_arn": keyARN},
				"routes":          map[string]interface{}{"orders": map[string]interface{}{"handler": "lambda", "function_arn": userFunctionARN}},
			},
			functions:  []string{"websocket", "publisher", "authorizer"},
			inputs:     []string{jwtSecretARN, keyARN, existingEventBusARN},
			decryptKey: true,
		},
		{
			name: "jwt public key from SSM, events on a new bus",
			vars: map[string]interface{}{
				"authorizer": map[string]interface{}{"mode": "jwt", "jwt": map[string]interface{}{"public_key_ssm_parameter": "/ws/jwks"}},
				"event_bus":  map[string]interface{}{"create": true},
			},
			functions: []string{"websocket", "publisher", "authorizer"},
			// The parameter ARN the module builds from the name, the (fake)
			// provider's account and region.
			inputs: []string{"arn:aws:ssm:us-east-1:123456789012:parameter/ws/jwks"},
		},
		{
			// An inline key has nothing to decrypt: its kms_key_arn adds no statement.
			name: "distributed fan-out with a customer queue key, jwt inline with a key, table key",
			vars: map[string]interface{}{
				"authorizer":         map[string]interface{}{"mode": "jwt", "jwt": map[string]interface{}{"public_key": fakePublicKey, "kms_key_arn": keyARN}},
				"distributed_fanout": map[string]interface{}{"enabled": true, "kms_key_arn": queueKeyARN},
				"dynamodb":           map[string]interface{}{"kms_key_arn": keyARN},
				"event_bus":          map[string]interface{}{"create": true},
			},
			functions: []string{"websocket", "publisher", "authorizer", "fanout"},
			inputs:    []string{keyARN, queueKeyARN},
		},
		{
			name:      "distributed fan-out with SQS managed encryption",
			vars:      map[string]interface{}{"distributed_fanout": map[string]interface{}{"enabled": true}},
			functions: []string{"websocket", "publisher", "fanout"},
		},
		{
			name:      "defaults",
			vars:      map[string]interface{}{},
			functions: []string{"websocket", "publisher"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			vars := map[string]interface{}{"name": "wst-iam", "lambda_artifacts": writeFakeZips(t, tc.functions...)}
			for k, v := range tc.vars {
				vars[k] = v
			}
			opts := options(t, "terraform", copyModule(t), vars)
			terraform.InitAndApply(t, opts)
			raw := terraform.Show(t, opts)
			var st tfjson.State
			require.NoError(t, json.Unmarshal([]byte(raw), &st))
			require.NotNil(t, st.Values)
			resources := stateResources(st.Values.RootModule)

			own := ownARNs(resources)
			require.NotEmpty(t, own)
			apiExecutionARN := attr(t, resources, "aws_apigatewayv2_api.this", "execution_arn")
			// API Gateway's management ARN of this API (API Gateway
			// Management V2's resource types): the deployer's only resources.
			apiManagementARN := "arn:aws:apigateway:us-east-1::/apis/" + attr(t, resources, "aws_apigatewayv2_api.this", "id")

			policies := 0
			for _, r := range resources {
				if r.Type != "aws_iam_role_policy" {
					continue
				}
				policies++
				doc := parsePolicy(t, r.AttributeValues["policy"].(string))
				for _, st := range doc.Statement {
					assert.Equal(t, "Allow", st.Effect, r.Address)
					require.NotEmpty(t, st.Action, r.Address)
					for _, action := range st.Action {
						assert.NotContainsf(t, action, "*", "%s %s: action wildcard", r.Address, st.Sid)
					}
					xray := strings.HasPrefix(st.Action[0], "xray:")
					for _, res := range st.Resource {
						if xray {
							assert.Equal(t, "*", res, "X-Ray actions take resource * only")
							assert.ElementsMatch(t, []string{"xray:PutTraceSegments", "xray:PutTelemetryRecords"}, st.Action)
							continue
						}
						if st.Sid == "CreateDeployment" || st.Sid == "MoveStage" {
							continue // checked exactly below
						}
						assert.Truef(t, ownsResource(res, own, tc.inputs),
							"%s statement %s names %s, which is neither this module's resource nor an input", r.Address, st.Sid, res)
					}
					if st.Sid == "ManageConnections" {
						// POST to send; DELETE only for the publisher's
						// disconnect command; GET for nobody.
						want := []string{apiExecutionARN + "/live/POST/@connections/*"}
						if strings.Contains(r.Address, `"publisher"`) {
							want = append(want, apiExecutionARN+"/live/DELETE/@connections/*")
						}
						assert.ElementsMatch(t, want, []string(st.Resource), r.Address)
					}
					if st.Sid == "ConnectionTable" {
						assert.NotContains(t, st.Action, "dynamodb:Scan")
						assert.ElementsMatch(t, dynamoActionsCalled(t), []string(st.Action), "the table actions are exactly the DynamoDB calls the functions make")
					}
					if strings.HasPrefix(st.Action[0], "kms:") {
						// A customer key only through the service whose data it encrypts.
						service, ok := map[string]string{"TableKey": "dynamodb", "FanoutQueueKey": "sqs", "DecryptKey": "secretsmanager"}[st.Sid]
						require.Truef(t, ok, "%s: unexpected key statement %s", r.Address, st.Sid)
						assert.Equalf(t, map[string]map[string]stringOrSet{"StringEquals": {"kms:ViaService": {service + ".us-east-1.amazonaws.com"}}}, st.Condition,
							"%s %s: the key is usable only through %s", r.Address, st.Sid, service)
					} else {
						assert.Nil(t, st.Condition, "%s %s", r.Address, st.Sid)
					}
					if st.Sid == "ReadKeyParameter" {
						assert.Len(t, st.Resource, 1)
						assert.Equal(t, "arn:aws:ssm:us-east-1:123456789012:parameter/ws/jwks", st.Resource[0])
					}
				}
				if strings.Contains(r.Address, `"deployer"`) {
					// CreateDeployment with stageName on this API and stage only.
					deployer := withoutXRay(policyOf(t, resources, r.Address))
					assert.Len(t, deployer, 3, "the deployer writes its logs, deploys and moves the stage: %v", deployer)
					assert.Equal(t, policyStatement{Sid: "CreateDeployment", Effect: "Allow", Action: stringOrSet{"apigateway:POST"}, Resource: stringOrSet{apiManagementARN + "/deployments"}}, deployer["CreateDeployment"])
					assert.Equal(t, policyStatement{Sid: "MoveStage", Effect: "Allow", Action: stringOrSet{"apigateway:PATCH"}, Resource: stringOrSet{apiManagementARN + "/stages/live"}}, deployer["MoveStage"])
					assert.Contains(t, deployer, "WriteOwnLogs")
				} else {
					for _, st := range doc.Statement {
						assert.False(t, strings.HasPrefix(st.Action[0], "apigateway:"), "%s: only the deployer manages the API", r.Address)
					}
				}
				checkFanoutStatements(t, r.Address, doc, tc.vars, resources)
				if strings.Contains(r.Address, `"authorizer"`) {
					_, decrypts := policyOf(t, resources, r.Address)["DecryptKey"]
					assert.Equal(t, tc.decryptKey, decrypts, "kms:Decrypt exactly for a key source it encrypts")
					for _, st := range doc.Statement {
						assert.NotEqual(t, "ConnectionTable", st.Sid, "the authorizer never touches the table")
						assert.NotEqual(t, "ManageConnections", st.Sid)
					}
				}
			}
			assert.Equal(t, len(tc.functions)+1, policies, "one policy per function, and the deployer's")

			roles := 0
			for _, r := range resources {
				if r.Type == "aws_iam_role" {
					roles++
					trust := parsePolicy(t, r.AttributeValues["assume_role_policy"].(string))
					assert.Len(t, trust.Statement, 1)
				}
			}
			assert.Equal(t, len(tc.functions)+1, roles, "one role per function, and the deployer's")

			invoke := parsePolicy(t, terraform.Output(t, opts, "publisher_invoke_policy_json"))
			require.Len(t, invoke.Statement, 1)
			assert.Equal(t, []string{"lambda:InvokeFunction"}, []string(invoke.Statement[0].Action))
			assert.Equal(t, []string{terraform.Output(t, opts, "publisher_function_arn")}, []string(invoke.Statement[0].Resource))
		})
	}
}

// ownARNs collects the ARN-like attributes of every resource in the state.
func ownARNs(resources []*tfjson.StateResource) []string {
	var out []string
	for _, r := range resources {
		if r.Mode != tfjson.ManagedResourceMode {
			continue
		}
		for _, name := range []string{"arn", "execution_arn"} {
			if v, ok := r.AttributeValues[name].(string); ok && v != "" {
				out = append(out, v)
			}
		}
	}
	return out
}

// ownsResource reports whether a policy resource is one of own (exactly, or a
// sub-resource path of it: "<table>/index/*", "<log group>:*",
// "<api>/<stage>/POST/@connections/*") or an input.
func ownsResource(res string, own, inputs []string) bool {
	for _, in := range inputs {
		if res == in {
			return true
		}
	}
	for _, arn := range own {
		if res == arn || strings.HasPrefix(res, arn+"/") || strings.HasPrefix(res, arn+":") {
			return true
		}
	}
	return false
}

func attr(t *testing.T, resources []*tfjson.StateResource, address, name string) string {
	t.Helper()
	v, ok := stateValue(t, resources, address, name).(string)
	require.Truef(t, ok, "%s.%s is not a string", address, name)
	return v
}

// stateValue is attribute name of the resource at address in the state.
func stateValue(t *testing.T, resources []*tfjson.StateResource, address, name string) interface{} {
	t.Helper()
	for _, r := range resources {
		if r.Address == address {
			return r.AttributeValues[name]
		}
	}
	require.FailNowf(t, "not in state", "%s", address)
	return nil
}

// queueKeyARN is a customer key of the fan-out queues, distinct from keyARN so
// the tests can tell which statement names which key.
const queueKeyARN = "arn:aws:kms:us-east-1:123456789012:key/9f1c2d3e-aaaa-bbbb-cccc-ddddeeeeffff"

// checkFanoutStatements: only the websocket and publisher functions may send
// to the fan-out queue, only with sqs:SendMessage; only the worker may
// consume it; nobody touches the dead-letter queue; the worker's table and
// API access mirror the websocket function's, and it gets neither events nor
// the authorizer's secrets.
func checkFanoutStatements(t *testing.T, address string, doc policyDocument, vars map[string]interface{}, resources []*tfjson.StateResource) {
	t.Helper()
	fanoutOn := false
	var queueKey interface{}
	if f, ok := vars["distributed_fanout"].(map[string]interface{}); ok {
		fanoutOn = f["enabled"] == true
		queueKey = f["kms_key_arn"]
	}
	sids := map[string]policyStatement{}
	for _, st := range doc.Statement {
		sids[st.Sid] = st
		for _, action := range st.Action {
			if strings.HasPrefix(action, "sqs:") {
				require.True(t, fanoutOn, "%s: sqs actions without distributed fan-out", address)
				assert.Equal(t, []string{attr(t, resources, "aws_sqs_queue.fanout[0]", "arn")}, []string(st.Resource), "%s %s: the fan-out queue only, never the DLQ", address, st.Sid)
			}
		}
	}
	fn := address[strings.Index(address, `["`)+2 : strings.LastIndex(address, `"]`)]
	send, sends := sids["EnqueueFanoutBatches"]
	consume, consumes := sids["ConsumeFanoutBatches"]
	key, hasKey := sids["FanoutQueueKey"]
	switch fn {
	case "websocket", "publisher":
		assert.Equal(t, fanoutOn, sends, "%s sends to the fan-out queue exactly when it is on", address)
		assert.False(t, consumes, "%s never consumes the fan-out queue", address)
		if sends {
			assert.Equal(t, []string{"sqs:SendMessage"}, []string(send.Action))
		}
		if queueKey != nil {
			require.True(t, hasKey, "%s needs the queue key to send", address)
			assert.ElementsMatch(t, []string{"kms:GenerateDataKey", "kms:Decrypt"}, []string(key.Action))
			assert.Equal(t, []string{queueKey.(string)}, []string(key.Resource))
		} else {
			assert.False(t, hasKey, address)
		}
	case "fanout":
		require.True(t, fanoutOn)
		assert.False(t, sends, "the worker never enqueues")
		require.True(t, consumes, "the worker consumes the fan-out queue")
		assert.ElementsMatch(t, []string{"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility"}, []string(consume.Action))
		if queueKey != nil {
			require.True(t, hasKey, "the worker needs the queue key to receive")
			assert.Equal(t, []string{"kms:Decrypt"}, []string(key.Action))
			assert.Equal(t, []string{queueKey.(string)}, []string(key.Resource))
		} else {
			assert.False(t, hasKey)
		}
		for _, sid := range []string{"LifecycleEvents", "ReadKeyParameter", "ReadKeySecret", "DecryptKey"} {
			assert.NotContainsf(t, sids, sid, "the worker has no %s statement", sid)
		}
		websocket := policyOf(t, resources, `aws_iam_role_policy.function["websocket"]`)
		for _, sid := range []string{"ConnectionTable", "ManageConnections", "TableKey"} {
			want, ok := websocket[sid]
			got, has := sids[sid]
			require.Equal(t, ok, has, "the worker has %s exactly when the websocket function does", sid)
			if ok {
				assert.ElementsMatch(t, want.Action, got.Action, "worker %s actions mirror the websocket function's", sid)
				assert.ElementsMatch(t, want.Resource, got.Resource, "worker %s resources mirror the websocket function's", sid)
			}
		}
		assert.Contains(t, sids, "ConnectionTable")
		assert.Contains(t, sids, "ManageConnections")
	default:
		assert.False(t, sends || consumes || hasKey, "%s has no fan-out permissions", address)
	}
}

// withoutXRay drops the X-Ray statement (present with tracing on).
func withoutXRay(sids map[string]policyStatement) map[string]policyStatement {
	delete(sids, "WriteTraces")
	return sids
}

// policyOf returns the statements of the policy at address, by Sid.
func policyOf(t *testing.T, resources []*tfjson.StateResource, address string) map[string]policyStatement {
	t.Helper()
	doc := parsePolicy(t, attr(t, resources, address, "policy"))
	out := map[string]policyStatement{}
	for _, st := range doc.Statement {
		out[st.Sid] = st
	}
	return out
}

// dynamoActionsCalled returns the IAM actions of the DynamoDB calls the
// deployed functions can make: the methods of every `DynamoAPI` interface in
// the Lambda sources (the store and the fan-out ledger declare the subset of
// *dynamodb.Client they use), plus the item-level actions a
// TransactWriteItems request needs for its Put, Update, Delete and
// ConditionCheck items. A call added to an interface must be granted, and a
// grant nothing calls must go.
func dynamoActionsCalled(t *testing.T) []string {
	t.Helper()
	root := filepath.Join(repoRoot, "lambda")
	actions := map[string]bool{}
	interfaces := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			// The local gateway and test fakes are not deployed.
			if d.Name() == "localgw" || d.Name() == "mgmtapitest" || d.Name() == "testdata" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			spec, ok := n.(*ast.TypeSpec)
			if !ok || spec.Name.Name != "DynamoAPI" {
				return true
			}
			iface, ok := spec.Type.(*ast.InterfaceType)
			if !ok {
				return true
			}
			interfaces++
			for _, m := range iface.Methods.List {
				for _, name := range m.Names {
					actions["dynamodb:"+name.Name] = true
				}
			}
			return false
		})
		return nil
	})
	require.NoError(t, err, "parse the Lambda sources")
	require.NotZero(t, interfaces, "no DynamoAPI interface found under lambda/")
	if actions["dynamodb:TransactWriteItems"] {
		for _, item := range []string{"PutItem", "UpdateItem", "DeleteItem", "ConditionCheckItem"} {
			actions["dynamodb:"+item] = true
		}
	}
	out := make([]string, 0, len(actions))
	for a := range actions {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}
