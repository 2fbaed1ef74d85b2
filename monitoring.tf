################################################################################
# Monitoring: CloudWatch dashboard and alarms (docs/operations.md, "What to watch")
################################################################################

locals {
  # The functions write CloudWatch Embedded Metric Format lines to their logs
  # (package lambda/metrics); CloudWatch files them under this namespace with
  # the dimension Function (and Reason for AuthorizerDenied).
  metrics_namespace = coalesce(var.metrics_namespace, "WebSocket/${var.name}")
  metrics_environment = {
    WS_METRICS_NAMESPACE = local.metrics_namespace
  }

  # Every function of the deployment, by its Function dimension value: the
  # Pusher-mode function (pusher.tf) runs the websocket binary, which then
  # writes Function=pusher.
  monitored_functions = concat(local.function_names, local.pusher_enabled ? ["pusher"] : [])
  # Functions that post to connections, and those whose in-process failures
  # are lost: the fan-out worker's batch posts go back to SQS, but the
  # member_left/member_removed it announces for the connections it finds gone
  # are sent in process like the others' (DeliveriesLost with Function=fanout).
  sending_functions  = [for fn in ["websocket", "publisher", "fanout", "pusher"] : fn if contains(local.monitored_functions, fn)]
  in_process_senders = [for fn in ["websocket", "publisher", "fanout", "pusher"] : fn if contains(local.monitored_functions, fn)]
  # Functions that enqueue distributed fan-out batches.
  enqueuing_functions = [for fn in ["websocket", "publisher", "pusher"] : fn if contains(local.monitored_functions, fn)]
  deny_reasons        = ["no_token", "invalid_token", "error"]

  api_dimensions = ["ApiId", aws_apigatewayv2_api.this.id, "Stage", var.stage_name]
  # Pusher mode: its WebSocket API (same stage name) and its HTTP API (stage
  # $default, the Pusher HTTP API's /apps/* routes).
  pusher_api_dimensions      = local.pusher_enabled ? ["ApiId", aws_apigatewayv2_api.pusher[0].id, "Stage", var.stage_name] : []
  pusher_http_api_dimensions = local.pusher_enabled ? ["ApiId", aws_apigatewayv2_api.pusher_http[0].id, "Stage", "$default"] : []
  fn_name = merge(
    { for fn in local.function_names : fn => aws_lambda_function.this[fn].function_name },
    local.pusher_enabled ? { pusher = aws_lambda_function.pusher[0].function_name } : {},
  )
  emf = local.metrics_namespace

  # DynamoDB's throttle events of the table leave out its global secondary
  # indexes (channel sends, user lookups and broadcasts read them): each
  # index's come with GlobalSecondaryIndexName. Keys are the alarm's metric
  # query ids.
  index_throttle_metrics = [
    for pair in setproduct(sort(keys(local.table_indexes)), ["ReadThrottleEvents", "WriteThrottleEvents"]) : { index = pair[0], metric = pair[1] }
  ]
  throttle_queries = merge(
    {
      table_read  = { metric = "ReadThrottleEvents", dimensions = { TableName = aws_dynamodb_table.this.name } }
      table_write = { metric = "WriteThrottleEvents", dimensions = { TableName = aws_dynamodb_table.this.name } }
    },
    { for q in local.index_throttle_metrics :
      "${replace(q.index, "-", "_")}_${q.metric == "ReadThrottleEvents" ? "read" : "write"}" => {
        metric     = q.metric
        dimensions = { TableName = aws_dynamodb_table.this.name, GlobalSecondaryIndexName = q.index }
      }
    },
  )

  # One JSON object per widget's properties, in display order (two per row).
  # Strings keep the conditional widgets' types apart.
  dashboard_properties = concat(
    [
      jsonencode({
        title   = "API Gateway: connections and messages", view = "timeSeries", stat = "Sum", period = 60, region = local.region
        metrics = [for m in ["ConnectCount", "MessageCount"] : concat(["AWS/ApiGateway", m], local.api_dimensions)]
      }),
      jsonencode({
        title   = "API Gateway: errors", view = "timeSeries", stat = "Sum", period = 60, region = local.region
        metrics = [for m in ["IntegrationError", "ClientError", "ExecutionError"] : concat(["AWS/ApiGateway", m], local.api_dimensions)]
      }),
      jsonencode({
        title   = "API Gateway: integration latency (ms)", view = "timeSeries", period = 60, region = local.region
        metrics = [for s in ["p50", "p99"] : concat(["AWS/ApiGateway", "IntegrationLatency"], local.api_dimensions, [{ stat = s, label = s }])]
      }),
      jsonencode({
        title   = "Lambda: invocations", view = "timeSeries", stat = "Sum", period = 60, region = local.region
        metrics = [for fn in local.monitored_functions : ["AWS/Lambda", "Invocations", "FunctionName", local.fn_name[fn], { label = fn }]]
      }),
      jsonencode({
        title = "Lambda: errors and throttles", view = "timeSeries", stat = "Sum", period = 60, region = local.region
        metrics = concat([for fn in local.monitored_functions : [
          ["AWS/Lambda", "Errors", "FunctionName", local.fn_name[fn], { label = "${fn} errors" }],
          ["AWS/Lambda", "Throttles", "FunctionName", local.fn_name[fn], { label = "${fn} throttles" }],
        ]]...)
      }),
      jsonencode({
        title = "Lambda: duration p99 (ms) and concurrency", view = "timeSeries", period = 60, region = local.region
        metrics = concat([for fn in local.monitored_functions : [
          ["AWS/Lambda", "Duration", "FunctionName", local.fn_name[fn], { stat = "p99", label = "${fn} p99" }],
          ["AWS/Lambda", "ConcurrentExecutions", "FunctionName", local.fn_name[fn], { stat = "Maximum", label = "${fn} concurrency", yAxis = "right" }],
        ]]...)
      }),
      jsonencode({
        title = "Connections and messages", view = "timeSeries", stat = "Sum", period = 60, region = local.region
        metrics = concat([for fn in [for fn in ["websocket", "pusher"] : fn if contains(local.monitored_functions, fn)] : [
          for m in ["ConnectionsOpened", "ConnectionsClosed", "MessagesReceived"] : [local.emf, m, "Function", fn, { label = "${fn} ${m}" }]
        ]]...)
      }),
      jsonencode({
        title = "Deliveries by outcome", view = "timeSeries", stat = "Sum", period = 60, region = local.region
        metrics = concat([for fn in local.sending_functions : [
          for m in concat(["DeliveriesSucceeded", "DeliveriesGone", "DeliveriesRefused", "DeliveriesFailed"], contains(local.in_process_senders, fn) ? ["DeliveriesLost"] : []) :
          [local.emf, m, "Function", fn, { label = "${fn} ${m}" }]
        ]]...)
      }),
      jsonencode({
        title = "Throttling: 429s met, retries, share of posts throttled (%)", view = "timeSeries", period = 60, region = local.region
        metrics = concat(
          concat([for fn in local.sending_functions : [
            [local.emf, "Throttled", "Function", fn, { stat = "Sum", id = "t_${fn}", label = "${fn} Throttled" }],
            [local.emf, "Retries", "Function", fn, { stat = "Sum", label = "${fn} Retries" }],
            [local.emf, "DeliveriesAttempted", "Function", fn, { stat = "Sum", id = "a_${fn}", visible = false }],
          ]]...),
          [[{ expression = local.throttled_share_expression, label = "throttled share (%)", id = "share", yAxis = "right" }]],
        )
      }),
      jsonencode({
        title = "Fan-out duration (ms)", view = "timeSeries", period = 60, region = local.region
        metrics = concat([for fn in local.sending_functions : [
          for s in ["p50", "p99"] : [local.emf, "FanoutDuration", "Function", fn, { stat = s, label = "${fn} ${s}" }]
        ]]...)
      }),
      jsonencode({
        title = "Fan-out rate (recipients/s)", view = "timeSeries", period = 60, region = local.region
        metrics = concat([for fn in local.sending_functions : [
          for s in ["Average", "Minimum"] : [local.emf, "FanoutRate", "Function", fn, { stat = s, label = "${fn} ${s}" }]
        ]]...)
      }),
      jsonencode({
        title = "Recipients per send", view = "timeSeries", period = 60, region = local.region
        metrics = concat([for fn in local.sending_functions : [
          for s in ["Average", "Maximum"] : [local.emf, "Recipients", "Function", fn, { stat = s, label = "${fn} ${s}" }]
        ]]...)
      }),
      jsonencode({
        title = "DynamoDB: throttled requests", view = "timeSeries", stat = "Sum", period = 60, region = local.region
        # The table's metrics leave out its indexes, which carry the
        # channel, user and broadcast reads: each index has its own.
        metrics = concat(
          [for m in ["ReadThrottleEvents", "WriteThrottleEvents"] : ["AWS/DynamoDB", m, "TableName", aws_dynamodb_table.this.name, { label = "table ${m}" }]],
          [for q in local.index_throttle_metrics : ["AWS/DynamoDB", q.metric, "TableName", aws_dynamodb_table.this.name, "GlobalSecondaryIndexName", q.index, { label = "${q.index} ${q.metric}" }]],
        )
      }),
      jsonencode({
        title   = "DynamoDB: consumed capacity units", view = "timeSeries", stat = "Sum", period = 60, region = local.region
        metrics = [for m in ["ConsumedReadCapacityUnits", "ConsumedWriteCapacityUnits"] : ["AWS/DynamoDB", m, "TableName", aws_dynamodb_table.this.name]]
      }),
    ],
    local.jwt_enabled ? [
      jsonencode({
        title = "Authorizer decisions", view = "timeSeries", stat = "Sum", period = 60, region = local.region
        metrics = concat(
          [[local.emf, "AuthorizerAllowed", "Function", "authorizer", { label = "allowed" }]],
          [for r in local.deny_reasons : [local.emf, "AuthorizerDenied", "Function", "authorizer", "Reason", r, { label = "denied: ${r}" }]],
        )
      }),
    ] : [],
    length(var.history) > 0 ? [
      jsonencode({
        title = "History recoveries (resubscribes with since)", view = "timeSeries", stat = "Sum", period = 60, region = local.region
        # Pusher clients recover too (pusher:subscribe with since), as Function=pusher.
        metrics = concat(
          [
            [local.emf, "HistoryRecovered", "Function", "websocket", { label = "recovered" }],
            [local.emf, "HistoryNotRecovered", "Function", "websocket", { label = "not recovered (messages lost)" }],
          ],
          local.pusher_enabled ? [
            [local.emf, "HistoryRecovered", "Function", "pusher", { label = "Pusher: recovered" }],
            [local.emf, "HistoryNotRecovered", "Function", "pusher", { label = "Pusher: not recovered (messages lost)" }],
          ] : [],
        )
      }),
    ] : [],
    local.pusher_enabled ? [
      jsonencode({
        title   = "Pusher WebSocket API: connections, messages and errors", view = "timeSeries", stat = "Sum", period = 60, region = local.region
        metrics = [for m in ["ConnectCount", "MessageCount", "IntegrationError", "ClientError", "ExecutionError"] : concat(["AWS/ApiGateway", m], local.pusher_api_dimensions)]
      }),
      jsonencode({
        title = "Pusher HTTP API: requests, errors and latency p99 (ms)", view = "timeSeries", period = 60, region = local.region
        metrics = concat(
          [for m in ["Count", "4xx", "5xx"] : concat(["AWS/ApiGateway", m], local.pusher_http_api_dimensions, [{ stat = "Sum", label = m }])],
          [concat(["AWS/ApiGateway", "Latency"], local.pusher_http_api_dimensions, [{ stat = "p99", label = "latency p99", yAxis = "right" }])],
        )
      }),
    ] : [],
    local.fanout_enabled ? [
      jsonencode({
        title = "Distributed fan-out batches", view = "timeSeries", stat = "Sum", period = 60, region = local.region
        metrics = concat(
          [for fn in local.enqueuing_functions : [local.emf, "BatchesEnqueued", "Function", fn, { label = "${fn} enqueued" }]],
          [for m in ["BatchesCompleted", "BatchesFailed"] : [local.emf, m, "Function", "fanout"]],
        )
      }),
      jsonencode({
        title = "Fan-out queue depth and dead-letter age", view = "timeSeries", stat = "Maximum", period = 60, region = local.region
        metrics = [
          ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", aws_sqs_queue.fanout[0].name, { label = "queue depth" }],
          ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", aws_sqs_queue.fanout_dlq[0].name, { label = "dead letters" }],
          ["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", aws_sqs_queue.fanout_dlq[0].name, { label = "oldest dead letter (s)", yAxis = "right" }],
        ]
      }),
    ] : [],
  )

  dashboard_body = "{\"widgets\":[${join(",", [
    for i, p in local.dashboard_properties : jsonencode({
      type = "metric", x = (i % 2) * 12, y = floor(i / 2) * 6, width = 12, height = 6, properties = jsondecode(p)
    })
  ])}]}"

  # Share of posts answered 429, over every sending function (metric math
  # over the EMF metrics; the ids are those of the metric queries).
  throttled_share_expression = "100 * (${join(" + ", [for fn in local.sending_functions : "FILL(t_${fn}, 0)"])}) / (${join(" + ", [for fn in local.sending_functions : "FILL(a_${fn}, 0)"])})"
  deliveries_lost_expression = join(" + ", [for fn in local.in_process_senders : "FILL(l_${fn}, 0)"])

  alarm_actions = var.alarm_sns_topic_arn == null ? [] : [var.alarm_sns_topic_arn]
}

resource "aws_cloudwatch_dashboard" "this" {
  count = var.dashboard_enabled ? 1 : 0

  dashboard_name = local.global_names["dashboard"]
  dashboard_body = local.dashboard_body
}

resource "aws_cloudwatch_metric_alarm" "dlq_not_empty" {
  count = local.fanout_enabled && var.alarms.enabled && var.alarms.dlq_not_empty.enabled ? 1 : 0

  alarm_name          = "${var.name}-fanout-dlq-not-empty"
  alarm_description   = "Fan-out batches failed max_receive_count deliveries and wait in the dead-letter queue: their recipients did not get the message (docs/operations.md)."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.fanout_dlq[0].name }
  statistic           = "Maximum"
  period              = var.alarms.dlq_not_empty.period
  evaluation_periods  = var.alarms.dlq_not_empty.evaluation_periods
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.alarms.dlq_not_empty.threshold
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "function_errors" {
  for_each = var.alarms.enabled && var.alarms.function_errors.enabled ? toset(local.monitored_functions) : toset([])

  alarm_name          = "${var.name}-${each.key}-errors"
  alarm_description   = "The ${each.key} function failed invocations (crash, timeout, out of memory); see its log group."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = local.fn_name[each.key] }
  statistic           = "Sum"
  period              = var.alarms.function_errors.period
  evaluation_periods  = var.alarms.function_errors.evaluation_periods
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = var.alarms.function_errors.threshold
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "api_execution_errors" {
  count = var.alarms.enabled && var.alarms.api_execution_errors.enabled ? 1 : 0

  alarm_name          = "${var.name}-api-execution-errors"
  alarm_description   = "API Gateway failed to run routes (ExecutionError): integration failures, authorizer errors, timeouts."
  namespace           = "AWS/ApiGateway"
  metric_name         = "ExecutionError"
  dimensions          = { ApiId = aws_apigatewayv2_api.this.id, Stage = var.stage_name }
  statistic           = "Sum"
  period              = var.alarms.api_execution_errors.period
  evaluation_periods  = var.alarms.api_execution_errors.evaluation_periods
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = var.alarms.api_execution_errors.threshold
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}

# Pusher mode: the same alarm on the Pusher WebSocket API, with the same
# settings, and one on the Pusher HTTP API's 5xx answers (the server SDKs'
# triggers and channel queries failing). Keyed as in alarm_arns.
resource "aws_cloudwatch_metric_alarm" "pusher_api" {
  for_each = local.pusher_enabled && var.alarms.enabled ? {
    for k, a in {
      pusher_api_execution_errors = {
        name        = "pusher-api-execution-errors"
        description = "API Gateway failed to run routes of the Pusher WebSocket API (ExecutionError): integration failures, timeouts."
        metric      = "ExecutionError"
        dimensions  = { ApiId = aws_apigatewayv2_api.pusher[0].id, Stage = var.stage_name }
        settings    = var.alarms.api_execution_errors
      }
      pusher_http_errors = {
        name        = "pusher-http-5xx"
        description = "The Pusher HTTP API (/apps/*) answered 5xx: the Pusher-mode function failed or timed out on server SDK calls (triggers, channel and user queries); see its log group."
        metric      = "5xx"
        dimensions  = { ApiId = aws_apigatewayv2_api.pusher_http[0].id, Stage = "$default" }
        settings    = var.alarms.pusher_http_errors
      }
    } : k => a if a.settings.enabled
  } : {}

  alarm_name          = "${var.name}-${each.value.name}"
  alarm_description   = each.value.description
  namespace           = "AWS/ApiGateway"
  metric_name         = each.value.metric
  dimensions          = each.value.dimensions
  statistic           = "Sum"
  period              = each.value.settings.period
  evaluation_periods  = each.value.settings.evaluation_periods
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = each.value.settings.threshold
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "dynamodb_throttles" {
  count = var.alarms.enabled && var.alarms.dynamodb_throttles.enabled ? 1 : 0

  alarm_name          = "${var.name}-dynamodb-throttles"
  alarm_description   = "DynamoDB throttled reads or writes of the connections table: raise capacity or switch to on-demand."
  evaluation_periods  = var.alarms.dynamodb_throttles.evaluation_periods
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = var.alarms.dynamodb_throttles.threshold
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags

  metric_query {
    id          = "throttles"
    expression  = join(" + ", [for id in keys(local.throttle_queries) : "FILL(${id}, 0)"])
    label       = "Throttled requests"
    return_data = true
  }

  # The table's throttle events and each index's (the table's metrics leave
  # the indexes out): 8 metrics, within an alarm's 10.
  dynamic "metric_query" {
    for_each = local.throttle_queries
    content {
      id = metric_query.key
      metric {
        namespace   = "AWS/DynamoDB"
        metric_name = metric_query.value.metric
        dimensions  = metric_query.value.dimensions
        stat        = "Sum"
        period      = var.alarms.dynamodb_throttles.period
      }
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "throttled_share" {
  count = var.alarms.enabled && var.alarms.throttled_share.enabled ? 1 : 0

  alarm_name          = "${var.name}-throttled-share"
  alarm_description   = "More than ${var.alarms.throttled_share.threshold_percent}% of posts to connections met 429: the account's 10,000 requests/s are exhausted; lower max_send_rate or ask for a higher quota."
  evaluation_periods  = var.alarms.throttled_share.evaluation_periods
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.alarms.throttled_share.threshold_percent
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags

  metric_query {
    id          = "share"
    expression  = local.throttled_share_expression
    label       = "Throttled share (%)"
    return_data = true
  }

  dynamic "metric_query" {
    for_each = merge(
      { for fn in local.sending_functions : "t_${fn}" => { name = "Throttled", function = fn } },
      { for fn in local.sending_functions : "a_${fn}" => { name = "DeliveriesAttempted", function = fn } },
    )
    content {
      id = metric_query.key
      metric {
        namespace   = local.metrics_namespace
        metric_name = metric_query.value.name
        dimensions  = { Function = metric_query.value.function }
        stat        = "Sum"
        period      = var.alarms.throttled_share.period
      }
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "deliveries_lost" {
  count = var.alarms.enabled && var.alarms.deliveries_lost.enabled ? 1 : 0

  alarm_name          = "${var.name}-deliveries-lost"
  alarm_description   = "Messages sent in-process by the ${join(", ", local.in_process_senders)} function(s) failed after every retry (DeliveriesLost): nothing will retry them."
  evaluation_periods  = var.alarms.deliveries_lost.evaluation_periods
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.alarms.deliveries_lost.threshold
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags

  metric_query {
    id          = "lost"
    expression  = local.deliveries_lost_expression
    label       = "Deliveries lost"
    return_data = true
  }

  dynamic "metric_query" {
    for_each = toset(local.in_process_senders)
    content {
      id = "l_${metric_query.key}"
      metric {
        namespace   = local.metrics_namespace
        metric_name = "DeliveriesLost"
        dimensions  = { Function = metric_query.key }
        stat        = "Sum"
        period      = var.alarms.deliveries_lost.period
      }
    }
  }
}
