package terraform_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gruntwork-io/terratest/modules/terraform"
	tfjson "github.com/hashicorp/terraform-json"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// metricCatalog is lambda/metrics/metrics.json, generated from the Go
// constants the functions emit (TestCatalogFile keeps it in step).
type metricCatalog struct {
	DenyReasons []string        `json:"denyReasons"`
	Metrics     []catalogMetric `json:"metrics"`
}

// catalogMetric is one metric the functions emit.
type catalogMetric struct {
	Name      string `json:"name"`
	Unit      string `json:"unit"`
	HasReason bool   `json:"hasReason"`
}

func loadMetricCatalog(t *testing.T) metricCatalog {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "lambda", "metrics", "metrics.json"))
	require.NoError(t, err)
	var c metricCatalog
	require.NoError(t, json.Unmarshal(b, &c))
	require.NotEmpty(t, c.Metrics)
	return c
}

// awsMetrics are the AWS metrics the dashboard may use, by namespace, with
// the dimension names each needs (from the AWS documentation of API Gateway
// WebSocket and HTTP APIs, Lambda, DynamoDB and SQS metrics).
var awsMetrics = map[string]struct {
	dimensions []string
	names      []string
}{
	"AWS/ApiGateway": {[]string{"ApiId", "Stage"}, []string{"ConnectCount", "MessageCount", "IntegrationError", "ClientError", "ExecutionError", "IntegrationLatency", "Count", "4xx", "5xx", "Latency"}},
	"AWS/Lambda":     {[]string{"FunctionName"}, []string{"Invocations", "Errors", "Throttles", "Duration", "ConcurrentExecutions"}},
	"AWS/DynamoDB":   {[]string{"TableName"}, []string{"ReadThrottleEvents", "WriteThrottleEvents", "ConsumedReadCapacityUnits", "ConsumedWriteCapacityUnits"}},
	"AWS/SQS":        {[]string{"QueueName"}, []string{"ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage"}},
}

// tableIndexes are the connections table's global secondary indexes
// (dynamodb.tf), whose throttle events DynamoDB reports apart from the table's.
var tableIndexes = []string{"channel-index", "shard-index", "user-index"}

// httpAPIMetrics are the AWS/ApiGateway metrics of an HTTP API (the Pusher
// HTTP API's), not of a WebSocket API.
var httpAPIMetrics = []string{"Count", "4xx", "5xx", "Latency"}

// checkDashboard parses a dashboard body and checks every metric it names:
// AWS metrics from awsMetrics with their dimensions and this deployment's
// resources, the functions' metrics from the catalog with only Function
// (and Reason for AuthorizerDenied) as dimensions. It returns the
// references, as "namespace name", and the widget titles.
func checkDashboard(t *testing.T, body, namespace string, functions, resources []string, catalog metricCatalog) (refs, titles []string) {
	t.Helper()
	var dash struct {
		Widgets []struct {
			Type                string `json:"type"`
			X, Y, Width, Height *int
			Properties          struct {
				Title   string  `json:"title"`
				Region  string  `json:"region"`
				Metrics [][]any `json:"metrics"`
			} `json:"properties"`
		} `json:"widgets"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &dash), "dashboard body is JSON: %s", body)
	require.NotEmpty(t, dash.Widgets)
	for _, w := range dash.Widgets {
		p := w.Properties
		titles = append(titles, p.Title)
		assert.Equal(t, "metric", w.Type)
		require.True(t, w.X != nil && w.Y != nil && w.Width != nil && w.Height != nil, "widget %q is placed", p.Title)
		assert.LessOrEqual(t, *w.X+*w.Width, 24, "widget %q fits the 24-column grid", p.Title)
		assert.NotEmpty(t, p.Region, "widget %q has a region", p.Title)
		require.NotEmpty(t, p.Metrics, "widget %q has metrics", p.Title)
		ids := map[string]bool{}
		var expressions []string
		for _, m := range p.Metrics {
			if opts, ok := m[len(m)-1].(map[string]any); ok {
				if id, ok := opts["id"].(string); ok {
					ids[id] = true
				}
				if expr, ok := opts["expression"].(string); ok {
					require.Len(t, m, 1, "an expression line holds only its options")
					expressions = append(expressions, expr)
					continue
				}
				m = m[:len(m)-1]
			}
			require.GreaterOrEqual(t, len(m), 4, "widget %q: metric %v has a dimension", p.Title, m)
			require.Equal(t, 0, len(m)%2, "widget %q: metric %v is namespace, name and dimension pairs", p.Title, m)
			ns, name := m[0].(string), m[1].(string)
			dims := map[string]string{}
			var dimNames []string
			for i := 2; i < len(m); i += 2 {
				dims[m[i].(string)] = m[i+1].(string)
				dimNames = append(dimNames, m[i].(string))
			}
			refs = append(refs, ns+" "+name)
			if ns == namespace {
				i := slices.IndexFunc(catalog.Metrics, func(c catalogMetric) bool { return c.Name == name })
				require.GreaterOrEqual(t, i, 0, "widget %q: %s is not a metric the functions emit", p.Title, name)
				want := []string{"Function"}
				if catalog.Metrics[i].HasReason {
					want = append(want, "Reason")
					assert.Contains(t, catalog.DenyReasons, dims["Reason"])
				}
				assert.Equal(t, want, dimNames, "widget %q: dimensions of %s", p.Title, name)
				assert.Contains(t, functions, dims["Function"], "widget %q: %s of a deployed function", p.Title, name)
				continue
			}
			known, ok := awsMetrics[ns]
			require.Truef(t, ok, "widget %q: unknown namespace %s", p.Title, ns)
			assert.Contains(t, known.names, name, "widget %q: %s is not a %s metric", p.Title, name, ns)
			wantDims := known.dimensions
			if index, ok := dims["GlobalSecondaryIndexName"]; ok {
				// DynamoDB's per-index throttle events (the table's leave
				// the indexes out).
				wantDims = []string{"TableName", "GlobalSecondaryIndexName"}
				assert.Contains(t, tableIndexes, index, "widget %q: an index of the table", p.Title)
				assert.Contains(t, []string{"ReadThrottleEvents", "WriteThrottleEvents"}, name, "widget %q: DynamoDB has %s per index", p.Title, name)
				refs = append(refs, ns+" "+name+" "+index)
			}
			assert.Equal(t, wantDims, dimNames, "widget %q: dimensions of %s %s", p.Title, ns, name)
			for _, d := range dimNames {
				if d != "Stage" && d != "GlobalSecondaryIndexName" {
					assert.Contains(t, resources, dims[d], "widget %q: %s=%s is this deployment's", p.Title, d, dims[d])
				}
			}
		}
		for _, expr := range expressions {
			for _, id := range strings.FieldsFunc(expr, func(r rune) bool { return !(r == '_' || r >= 'a' && r <= 'z') }) {
				if id != "" && id[0] >= 'a' && id[0] <= 'z' && strings.Contains(id, "_") {
					assert.True(t, ids[id], "widget %q: expression %q refers to %s, which no metric defines", p.Title, expr, id)
				}
			}
		}
	}
	return refs, titles
}

// TestMonitoringDashboard applies the module with every function (JWT
// authorizer, distributed fan-out) and checks the dashboard body in state
// (its API id is unknown until apply) with Terraform and OpenTofu: valid
// JSON, only metrics that exist, every metric the functions emit shown,
// and WS_METRICS_NAMESPACE set on every function.
func TestMonitoringDashboard(t *testing.T) {
	t.Parallel()
	catalog := loadMetricCatalog(t)
	for _, tool := range []string{"terraform", "tofu"} {
		t.Run(tool, func(t *testing.T) {
			t.Parallel()
			name := "wst-mon-" + tool
			opts := options(t, tool, copyModule(t), map[string]interface{}{
				"name":               name,
				"metrics_namespace":  "WebSocket/mon-" + tool,
				"distributed_fanout": map[string]interface{}{"enabled": true},
				"authorizer":         map[string]interface{}{"mode": "jwt", "jwt": map[string]interface{}{"secret_ssm_parameter": "/ws/jwt"}},
				"history":            []interface{}{map[string]interface{}{"pattern": "chat-*"}},
				"lambda_artifacts":   writeFakeZips(t, "websocket", "publisher", "authorizer", "fanout"),
			})
			terraform.InitAndApply(t, opts)
			var st tfjson.State
			require.NoError(t, json.Unmarshal([]byte(terraform.Show(t, opts)), &st))
			resources := stateResources(st.Values.RootModule)
			functions := []string{"websocket", "publisher", "authorizer", "fanout", "deployer"}
			var names []string
			for _, fn := range functions {
				names = append(names, attr(t, resources, fmt.Sprintf("aws_lambda_function.this[%q]", fn), "function_name"))
				env := stateEnvironment(t, resources, fmt.Sprintf("aws_lambda_function.this[%q]", fn))
				assert.Equal(t, "WebSocket/mon-"+tool, env["WS_METRICS_NAMESPACE"], "%s writes its metrics to the deployment's namespace", fn)
			}
			names = append(names,
				attr(t, resources, "aws_apigatewayv2_api.this", "id"),
				attr(t, resources, "aws_dynamodb_table.this", "name"),
				attr(t, resources, "aws_sqs_queue.fanout[0]", "name"),
				attr(t, resources, "aws_sqs_queue.fanout_dlq[0]", "name"))

			body := attr(t, resources, "aws_cloudwatch_dashboard.this[0]", "dashboard_body")
			refs, titles := checkDashboard(t, body, "WebSocket/mon-"+tool, functions, names, catalog)
			for _, m := range catalog.Metrics {
				assert.Contains(t, refs, "WebSocket/mon-"+tool+" "+m.Name, "the dashboard shows %s", m.Name)
			}
			for ns, known := range awsMetrics {
				for _, m := range known.names {
					if ns == "AWS/ApiGateway" && slices.Contains(httpAPIMetrics, m) {
						continue // the Pusher HTTP API's (TestMonitoringPusherFunction)
					}
					assert.Contains(t, refs, ns+" "+m, "the dashboard shows %s %s", ns, m)
				}
			}
			for _, index := range tableIndexes {
				for _, m := range []string{"ReadThrottleEvents", "WriteThrottleEvents"} {
					assert.Contains(t, refs, "AWS/DynamoDB "+m+" "+index, "the dashboard shows the %s of %s", m, index)
				}
			}
			assert.Contains(t, titles, "Fan-out queue depth and dead-letter age")
			assert.Contains(t, titles, "Authorizer decisions")
			assert.Contains(t, titles, "History recoveries (resubscribes with since)")
			// The worker's member_left posts for the connections it finds
			// gone are sent in process: its DeliveriesLost is alarmed too.
			lostQueries := map[string]bool{}
			for _, r := range resources {
				if r.Address != "aws_cloudwatch_metric_alarm.deliveries_lost[0]" {
					continue
				}
				for _, q := range r.AttributeValues["metric_query"].([]interface{}) {
					for _, m := range q.(map[string]interface{})["metric"].([]interface{}) {
						mm := m.(map[string]interface{})
						lostQueries[mm["metric_name"].(string)+" "+mm["dimensions"].(map[string]interface{})["Function"].(string)] = true
					}
				}
			}
			assert.True(t, lostQueries["DeliveriesLost fanout"], "the deliveries-lost alarm covers the fan-out worker: %v", lostQueries)
			assert.True(t, lostQueries["DeliveriesLost websocket"])
			dashboard := terraform.Output(t, opts, "dashboard_name")
			assert.Regexp(t, `^`+name+`-[a-z]{2}(-[a-z]+)+-[0-9]$`, dashboard, "<name>-<region>: dashboards are global to the account")
			assert.Regexp(t, `^https://([a-z0-9-]+)\.console\.aws\.amazon\.com/cloudwatch/home\?region=[a-z0-9-]+#dashboards:name=`+dashboard+`$`, terraform.Output(t, opts, "dashboard_url"), "the commercial partition's console")
		})
	}
}

// TestMonitoringPusherFunction applies Pusher mode with Terraform and
// OpenTofu and checks that the Pusher-mode function is monitored like the
// others: WS_METRICS_NAMESPACE in its environment, its Lambda metrics and
// its EMF metrics (Function=pusher, the value the websocket binary writes in
// Pusher mode) on the dashboard, its own errors alarm, and its deliveries in
// the throttled-share and deliveries-lost alarms.
func TestMonitoringPusherFunction(t *testing.T) {
	t.Parallel()
	catalog := loadMetricCatalog(t)
	for _, tool := range []string{"terraform", "tofu"} {
		t.Run(tool, func(t *testing.T) {
			t.Parallel()
			namespace := "WebSocket/pusher-mon-" + tool
			vars := pusherVars(nil)
			vars["name"] = "wst-pmon-" + tool
			vars["metrics_namespace"] = namespace
			vars["lambda_artifacts"] = writeFakeZips(t, "websocket", "publisher")
			vars["history"] = []interface{}{map[string]interface{}{"pattern": "chat-*"}}
			opts := options(t, tool, copyModule(t), vars)
			terraform.InitAndApply(t, opts)
			var st tfjson.State
			require.NoError(t, json.Unmarshal([]byte(terraform.Show(t, opts)), &st))
			resources := stateResources(st.Values.RootModule)

			env := stateEnvironment(t, resources, "aws_lambda_function.pusher[0]")
			assert.Equal(t, namespace, env["WS_METRICS_NAMESPACE"], "the Pusher-mode function writes its metrics to the deployment's namespace")
			pusherName := attr(t, resources, "aws_lambda_function.pusher[0]", "function_name")

			functions := []string{"websocket", "publisher", "deployer", "pusher"}
			pusherAPI := attr(t, resources, "aws_apigatewayv2_api.pusher[0]", "id")
			pusherHTTP := attr(t, resources, "aws_apigatewayv2_api.pusher_http[0]", "id")
			names := []string{pusherName, attr(t, resources, "aws_apigatewayv2_api.this", "id"), attr(t, resources, "aws_dynamodb_table.this", "name"), pusherAPI, pusherHTTP}
			for _, fn := range functions[:3] {
				names = append(names, attr(t, resources, fmt.Sprintf("aws_lambda_function.this[%q]", fn), "function_name"))
			}
			body := attr(t, resources, "aws_cloudwatch_dashboard.this[0]", "dashboard_body")
			checkDashboard(t, body, namespace, functions, names, catalog)
			for _, m := range []string{"HistoryRecovered", "HistoryNotRecovered"} {
				assert.Contains(t, body, `"`+m+`","Function","pusher"`, "Pusher clients' recoveries are charted (%s)", m)
			}
			var dash struct {
				Widgets []struct {
					Properties struct {
						Title   string  `json:"title"`
						Metrics [][]any `json:"metrics"`
					} `json:"properties"`
				} `json:"widgets"`
			}
			require.NoError(t, json.Unmarshal([]byte(body), &dash))
			pusherMetrics := map[string]bool{}
			lambdaMetrics := map[string]bool{}
			apiMetrics := map[string]bool{} // "apiId stage name"
			for _, w := range dash.Widgets {
				for _, m := range w.Properties.Metrics {
					if len(m) >= 6 && m[0] == "AWS/ApiGateway" {
						apiMetrics[fmt.Sprintf("%v %v %v", m[3], m[5], m[1])] = true
					}
					if len(m) >= 4 && m[0] == namespace && m[2] == "Function" && m[3] == "pusher" {
						pusherMetrics[m[1].(string)] = true
					}
					if len(m) >= 4 && m[0] == "AWS/Lambda" && m[3] == pusherName {
						lambdaMetrics[m[1].(string)] = true
					}
				}
			}
			for _, m := range []string{"ConnectionsOpened", "ConnectionsClosed", "MessagesReceived", "DeliveriesSucceeded", "DeliveriesGone", "DeliveriesLost", "Throttled", "DeliveriesAttempted", "FanoutDuration", "Recipients"} {
				assert.True(t, pusherMetrics[m], "the dashboard shows %s of Function=pusher", m)
			}
			for _, m := range []string{"Invocations", "Errors", "Throttles", "Duration", "ConcurrentExecutions"} {
				assert.True(t, lambdaMetrics[m], "the dashboard shows AWS/Lambda %s of %s", m, pusherName)
			}
			for _, m := range []string{"ConnectCount", "MessageCount", "IntegrationError", "ClientError", "ExecutionError"} {
				assert.True(t, apiMetrics[pusherAPI+" live "+m], "the dashboard shows %s of the Pusher WebSocket API", m)
			}
			for _, m := range []string{"Count", "4xx", "5xx", "Latency"} {
				assert.True(t, apiMetrics[pusherHTTP+" $default "+m], "the dashboard shows %s of the Pusher HTTP API", m)
			}

			var errorsAlarm, share, lost, wsErrors, httpErrors map[string]interface{}
			for _, r := range resources {
				switch r.Address {
				case `aws_cloudwatch_metric_alarm.pusher_api["pusher_api_execution_errors"]`:
					wsErrors = r.AttributeValues
				case `aws_cloudwatch_metric_alarm.pusher_api["pusher_http_errors"]`:
					httpErrors = r.AttributeValues
				case `aws_cloudwatch_metric_alarm.function_errors["pusher"]`:
					errorsAlarm = r.AttributeValues
				case "aws_cloudwatch_metric_alarm.throttled_share[0]":
					share = r.AttributeValues
				case "aws_cloudwatch_metric_alarm.deliveries_lost[0]":
					lost = r.AttributeValues
				}
			}
			require.NotNil(t, wsErrors, "the Pusher WebSocket API has its ExecutionError alarm")
			assert.Equal(t, "ExecutionError", wsErrors["metric_name"])
			assert.Equal(t, map[string]interface{}{"ApiId": pusherAPI, "Stage": "live"}, wsErrors["dimensions"])
			assert.EqualValues(t, 5, wsErrors["threshold"], "api_execution_errors' threshold")
			require.NotNil(t, httpErrors, "the Pusher HTTP API has its 5xx alarm")
			assert.Equal(t, "5xx", httpErrors["metric_name"])
			assert.Equal(t, map[string]interface{}{"ApiId": pusherHTTP, "Stage": "$default"}, httpErrors["dimensions"])
			assert.EqualValues(t, 5, httpErrors["threshold"])
			alarmARNs := map[string]interface{}{}
			require.NoError(t, json.Unmarshal([]byte(terraform.OutputJson(t, opts, "alarm_arns")), &alarmARNs))
			assert.Equal(t, wsErrors["arn"], alarmARNs["pusher_api_execution_errors"])
			assert.Equal(t, httpErrors["arn"], alarmARNs["pusher_http_errors"])
			require.NotNil(t, errorsAlarm, "the Pusher-mode function has its errors alarm")
			assert.Equal(t, map[string]interface{}{"FunctionName": pusherName}, errorsAlarm["dimensions"])
			require.NotNil(t, share)
			require.NotNil(t, lost)
			queried := func(alarm map[string]interface{}) map[string]bool {
				out := map[string]bool{}
				for _, q := range alarm["metric_query"].([]interface{}) {
					for _, m := range q.(map[string]interface{})["metric"].([]interface{}) {
						mm := m.(map[string]interface{})
						if mm["namespace"] == namespace {
							out[mm["metric_name"].(string)+" "+mm["dimensions"].(map[string]interface{})["Function"].(string)] = true
						}
					}
				}
				return out
			}
			assert.True(t, queried(share)["Throttled pusher"], "the throttled share counts the Pusher-mode function's 429s")
			assert.True(t, queried(share)["DeliveriesAttempted pusher"])
			assert.True(t, queried(lost)["DeliveriesLost pusher"], "the Pusher-mode function sends in process: its lost deliveries alarm")
		})
	}
}

// TestMonitoringAlarms plans the module with Terraform and OpenTofu and
// checks which alarms and dashboards exist for each set of inputs, and that
// the SNS topic becomes every alarm's action.
func TestMonitoringAlarms(t *testing.T) {
	t.Parallel()
	defaults := []string{
		"aws_cloudwatch_metric_alarm.api_execution_errors[0]",
		"aws_cloudwatch_metric_alarm.deliveries_lost[0]",
		"aws_cloudwatch_metric_alarm.dynamodb_throttles[0]",
		`aws_cloudwatch_metric_alarm.function_errors["publisher"]`,
		`aws_cloudwatch_metric_alarm.function_errors["websocket"]`,
		// The deployer's too (a failed redeploy also fails the apply).
		`aws_cloudwatch_metric_alarm.function_errors["deployer"]`,
		"aws_cloudwatch_metric_alarm.throttled_share[0]",
	}
	const topic = "arn:aws:sns:us-east-1:123456789012:ws-alarms"
	tests := []struct {
		name      string
		vars      map[string]interface{}
		alarms    []string
		dashboard bool
		check     func(t *testing.T, plan *terraform.PlanStruct)
	}{
		{name: "defaults", alarms: defaults, dashboard: true, check: func(t *testing.T, plan *terraform.PlanStruct) {
			for _, a := range defaults {
				assert.Empty(t, planned(t, plan, a)["alarm_actions"], "%s: no actions without a topic", a)
			}
			share := planned(t, plan, "aws_cloudwatch_metric_alarm.throttled_share[0]")
			assert.EqualValues(t, 10, share["threshold"])
			assert.EqualValues(t, 5, share["evaluation_periods"])
			// The throttles alarm sums the table's throttle events and
			// each index's, which the table's leave out.
			throttles := planned(t, plan, "aws_cloudwatch_metric_alarm.dynamodb_throttles[0]")
			var expression string
			queried := map[string]string{}
			for _, q := range throttles["metric_query"].([]interface{}) {
				q := q.(map[string]interface{})
				if e, _ := q["expression"].(string); e != "" {
					expression = e
					continue
				}
				for _, m := range q["metric"].([]interface{}) {
					m := m.(map[string]interface{})
					dims := m["dimensions"].(map[string]interface{})
					assert.Equal(t, "wst-alarms", dims["TableName"])
					index, _ := dims["GlobalSecondaryIndexName"].(string)
					queried[m["metric_name"].(string)+" "+index] = q["id"].(string)
				}
			}
			for _, index := range append([]string{""}, tableIndexes...) {
				for _, m := range []string{"ReadThrottleEvents", "WriteThrottleEvents"} {
					id, ok := queried[m+" "+index]
					if assert.True(t, ok, "the throttles alarm queries %s of %q", m, index) {
						assert.Contains(t, expression, "FILL("+id+", 0)", "the alarm's expression sums %s", id)
					}
				}
			}
			assert.Len(t, queried, 8, "an alarm takes at most 10 metrics")
			assert.Equal(t, "WebSocket/wst-alarms", outputValue(t, plan, "metrics_namespace"))
		}},
		{
			name:      "distributed fan-out adds the DLQ alarm and the worker's errors",
			vars:      map[string]interface{}{"distributed_fanout": map[string]interface{}{"enabled": true}},
			alarms:    append([]string{"aws_cloudwatch_metric_alarm.dlq_not_empty[0]", `aws_cloudwatch_metric_alarm.function_errors["fanout"]`}, defaults...),
			dashboard: true,
			check: func(t *testing.T, plan *terraform.PlanStruct) {
				dlq := planned(t, plan, "aws_cloudwatch_metric_alarm.dlq_not_empty[0]")
				assert.EqualValues(t, 0, dlq["threshold"], "any dead letter")
				assert.Equal(t, "GreaterThanThreshold", dlq["comparison_operator"])
				assert.EqualValues(t, 300, dlq["period"])
				assert.EqualValues(t, 1, dlq["evaluation_periods"])
			},
		},
		{
			name: "the DLQ alarm's threshold, period and evaluation periods are the caller's",
			vars: map[string]interface{}{
				"distributed_fanout": map[string]interface{}{"enabled": true},
				"alarms":             map[string]interface{}{"dlq_not_empty": map[string]interface{}{"threshold": 10, "period": 60, "evaluation_periods": 3}},
			},
			alarms:    append([]string{"aws_cloudwatch_metric_alarm.dlq_not_empty[0]", `aws_cloudwatch_metric_alarm.function_errors["fanout"]`}, defaults...),
			dashboard: true,
			check: func(t *testing.T, plan *terraform.PlanStruct) {
				dlq := planned(t, plan, "aws_cloudwatch_metric_alarm.dlq_not_empty[0]")
				assert.EqualValues(t, 10, dlq["threshold"])
				assert.EqualValues(t, 60, dlq["period"])
				assert.EqualValues(t, 3, dlq["evaluation_periods"])
			},
		},
		{
			name: "Pusher mode adds the Pusher APIs' alarms and the Pusher function's errors; pusher_http_errors turns off alone",
			vars: map[string]interface{}{
				"pusher": pusherVars(nil)["pusher"],
				"alarms": map[string]interface{}{"pusher_http_errors": map[string]interface{}{"enabled": false}},
			},
			alarms:    append([]string{`aws_cloudwatch_metric_alarm.pusher_api["pusher_api_execution_errors"]`, `aws_cloudwatch_metric_alarm.function_errors["pusher"]`}, defaults...),
			dashboard: true,
		},
		{
			name:   "all alarms off, no dashboard",
			vars:   map[string]interface{}{"alarms": map[string]interface{}{"enabled": false}, "dashboard_enabled": false},
			alarms: nil,
			check: func(t *testing.T, plan *terraform.PlanStruct) {
				assert.Nil(t, outputValue(t, plan, "dashboard_url"))
				assert.Empty(t, outputValue(t, plan, "alarm_arns"))
			},
		},
		{
			name: "single alarms off, thresholds and topic set",
			vars: map[string]interface{}{
				"alarm_sns_topic_arn": topic,
				"metrics_namespace":   "Chat/prod",
				"alarms": map[string]interface{}{
					"function_errors": map[string]interface{}{"enabled": false},
					"deliveries_lost": map[string]interface{}{"enabled": false},
					"throttled_share": map[string]interface{}{"threshold_percent": 25, "evaluation_periods": 2},
				},
			},
			alarms: []string{
				"aws_cloudwatch_metric_alarm.api_execution_errors[0]",
				"aws_cloudwatch_metric_alarm.dynamodb_throttles[0]",
				"aws_cloudwatch_metric_alarm.throttled_share[0]",
			},
			dashboard: true,
			check: func(t *testing.T, plan *terraform.PlanStruct) {
				for _, a := range []string{"aws_cloudwatch_metric_alarm.api_execution_errors[0]", "aws_cloudwatch_metric_alarm.throttled_share[0]"} {
					assert.Equal(t, []interface{}{topic}, planned(t, plan, a)["alarm_actions"], a)
					assert.Equal(t, []interface{}{topic}, planned(t, plan, a)["ok_actions"], a)
				}
				share := planned(t, plan, "aws_cloudwatch_metric_alarm.throttled_share[0]")
				assert.EqualValues(t, 25, share["threshold"])
				assert.EqualValues(t, 2, share["evaluation_periods"])
				var namespaces []string
				for _, q := range share["metric_query"].([]interface{}) {
					for _, m := range q.(map[string]interface{})["metric"].([]interface{}) {
						namespaces = append(namespaces, m.(map[string]interface{})["namespace"].(string))
					}
				}
				assert.Len(t, namespaces, 4, "Throttled and DeliveriesAttempted of websocket and publisher")
				for _, ns := range namespaces {
					assert.Equal(t, "Chat/prod", ns)
				}
			},
		},
	}
	for _, tool := range []string{"terraform", "tofu"} {
		for _, tt := range tests {
			t.Run(tool+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				vars := map[string]interface{}{"name": "wst-alarms"}
				for k, v := range tt.vars {
					vars[k] = v
				}
				plan := terraform.InitAndPlanAndShowWithStruct(t, withPlanFile(t, options(t, tool, copyModule(t), vars)))
				got := resourcesOfType(plan, "aws_cloudwatch_metric_alarm")
				assert.ElementsMatch(t, tt.alarms, got)
				if tt.dashboard {
					assert.Equal(t, []string{"aws_cloudwatch_dashboard.this[0]"}, resourcesOfType(plan, "aws_cloudwatch_dashboard"))
				} else {
					assert.Empty(t, resourcesOfType(plan, "aws_cloudwatch_dashboard"))
				}
				if tt.check != nil {
					tt.check(t, plan)
				}
			})
		}
	}
}

// TestMonitoringInputsAreValidated: the module refuses a reserved namespace
// or one starting with a colon, a topic that is not an SNS ARN, an alarm
// period that is not whole minutes, periods x evaluation periods past
// CloudWatch's bounds, and thresholds that fire on every datapoint.
func TestMonitoringInputsAreValidated(t *testing.T) {
	t.Parallel()
	dir := copyModule(t)
	for name, vars := range map[string]map[string]interface{}{
		"AWS namespace": {"metrics_namespace": "AWS/Lambda"},
		"topic":         {"alarm_sns_topic_arn": "arn:aws:sqs:us-east-1:123456789012:q"},
		"period":        {"alarms": map[string]interface{}{"function_errors": map[string]interface{}{"period": 90}}},
		"share":         {"alarms": map[string]interface{}{"throttled_share": map[string]interface{}{"threshold_percent": 150}}},
		"pusher period": {"alarms": map[string]interface{}{"pusher_http_errors": map[string]interface{}{"period": 30}}},
		"dlq periods":   {"alarms": map[string]interface{}{"dlq_not_empty": map[string]interface{}{"evaluation_periods": 0}}},
		"over a day":    {"alarms": map[string]interface{}{"function_errors": map[string]interface{}{"period": 300, "evaluation_periods": 289}}},
		"over 7 days":   {"alarms": map[string]interface{}{"throttled_share": map[string]interface{}{"period": 3600, "evaluation_periods": 169}}},
		"zero errors":   {"alarms": map[string]interface{}{"function_errors": map[string]interface{}{"threshold": 0}}},
		"negative lost": {"alarms": map[string]interface{}{"deliveries_lost": map[string]interface{}{"threshold": -1}}},
		"colon":         {"metrics_namespace": ":ws"},
	} {
		vars["name"] = "wst-bad"
		opts := withPlanFile(t, options(t, "terraform", dir, vars))
		_, err := terraform.InitAndPlanE(t, opts)
		require.Error(t, err, name)
		assert.Contains(t, err.Error(), "Invalid value for variable", name)
	}
}
