package terraform_test

import (
	"encoding/json"
	"testing"

	"github.com/gruntwork-io/terratest/modules/terraform"
	tfjson "github.com/hashicorp/terraform-json"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDistributedFanoutWiring applies the module with distributed fan-out on
// (schema-replay provider, stand-in zips) and follows the references that are
// unknown at plan time: the queue's redrive policy names the DLQ, the DLQ
// accepts only that queue, the event source mapping connects the queue to the
// worker, the senders get the queue's URL, the worker shares their management
// endpoint, and the outputs name the same objects. A second plan is empty.
func TestDistributedFanoutWiring(t *testing.T) {
	t.Parallel()
	opts := options(t, "terraform", copyModule(t), map[string]interface{}{
		"name":               "wst-fanout",
		"distributed_fanout": map[string]interface{}{"enabled": true, "max_receive_count": 7, "max_concurrency": 2},
		"lambda_artifacts":   writeFakeZips(t, "websocket", "publisher", "fanout"),
	})
	terraform.InitAndApply(t, opts)
	var st tfjson.State
	require.NoError(t, json.Unmarshal([]byte(terraform.Show(t, opts)), &st))
	require.NotNil(t, st.Values)
	resources := stateResources(st.Values.RootModule)

	queueARN := attr(t, resources, "aws_sqs_queue.fanout[0]", "arn")
	queueURL := attr(t, resources, "aws_sqs_queue.fanout[0]", "url")
	dlqARN := attr(t, resources, "aws_sqs_queue.fanout_dlq[0]", "arn")
	dlqURL := attr(t, resources, "aws_sqs_queue.fanout_dlq[0]", "url")
	workerARN := attr(t, resources, `aws_lambda_function.this["fanout"]`, "arn")
	require.NotEqual(t, queueARN, dlqARN)

	var redrive struct {
		DeadLetterTargetArn string `json:"deadLetterTargetArn"`
		MaxReceiveCount     int    `json:"maxReceiveCount"`
	}
	require.NoError(t, json.Unmarshal([]byte(attr(t, resources, "aws_sqs_queue.fanout[0]", "redrive_policy")), &redrive))
	assert.Equal(t, dlqARN, redrive.DeadLetterTargetArn, "failed batches go to the DLQ")
	assert.Equal(t, 7, redrive.MaxReceiveCount)

	var allow struct {
		RedrivePermission string   `json:"redrivePermission"`
		SourceQueueArns   []string `json:"sourceQueueArns"`
	}
	require.NoError(t, json.Unmarshal([]byte(attr(t, resources, "aws_sqs_queue_redrive_allow_policy.fanout_dlq[0]", "redrive_allow_policy")), &allow))
	assert.Equal(t, "byQueue", allow.RedrivePermission)
	assert.Equal(t, []string{queueARN}, allow.SourceQueueArns, "only the fan-out queue may use the DLQ")
	assert.Equal(t, dlqURL, attr(t, resources, "aws_sqs_queue_redrive_allow_policy.fanout_dlq[0]", "queue_url"))

	assert.Equal(t, queueARN, attr(t, resources, "aws_lambda_event_source_mapping.fanout[0]", "event_source_arn"))
	assert.Equal(t, workerARN, attr(t, resources, "aws_lambda_event_source_mapping.fanout[0]", "function_name"))
	assert.EqualValues(t, 5, stateValue(t, resources, "aws_lambda_event_source_mapping.fanout[0]", "batch_size"),
		"messages_per_invocation unset: half a second of posting at 10,000/s / 2 workers is 5 batches of 500 (fanout.Settings.MessagesPerInvocation)")

	workerEnv := stateEnvironment(t, resources, `aws_lambda_function.this["fanout"]`)
	require.NotEmpty(t, workerEnv["WS_MANAGEMENT_ENDPOINT"])
	assert.NotContains(t, workerEnv, "WS_FANOUT_QUEUE_URL")
	for _, fn := range []string{"websocket", "publisher"} {
		env := stateEnvironment(t, resources, `aws_lambda_function.this["`+fn+`"]`)
		assert.Equal(t, queueURL, env["WS_FANOUT_QUEUE_URL"], "%s enqueues on the fan-out queue", fn)
		assert.Equal(t, env["WS_MANAGEMENT_ENDPOINT"], workerEnv["WS_MANAGEMENT_ENDPOINT"], "the worker posts to the same stage as %s", fn)
		assert.Equal(t, env["WS_TABLE_NAME"], workerEnv["WS_TABLE_NAME"])
		assert.Equal(t, "2", env["WS_FANOUT_MAX_CONCURRENCY"], fn)
	}

	for name, want := range map[string]string{
		"fanout_queue_url":     queueURL,
		"fanout_queue_arn":     queueARN,
		"fanout_dlq_url":       dlqURL,
		"fanout_dlq_arn":       dlqARN,
		"fanout_function_name": "wst-fanout-fanout",
		"fanout_function_arn":  workerARN,
	} {
		assert.Equal(t, want, terraform.Output(t, opts, name), "output %s", name)
	}
	assert.Equal(t, 0, terraform.PlanExitCode(t, opts), "a second plan is empty")
}

// stateEnvironment returns a function's environment variables from state.
func stateEnvironment(t *testing.T, resources []*tfjson.StateResource, address string) map[string]interface{} {
	t.Helper()
	for _, r := range resources {
		if r.Address == address {
			return block(t, r.AttributeValues, "environment")["variables"].(map[string]interface{})
		}
	}
	require.FailNowf(t, "not in state", "%s", address)
	return nil
}
