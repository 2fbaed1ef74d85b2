################################################################################
# Endpoints
################################################################################

output "websocket_url" {
  description = "URL clients connect to (`wss://...`); with the JWT authorizer append `?token=<JWT>`."
  value       = local.websocket_url
}

output "management_endpoint" {
  description = "Base URL of the `@connections` management API: always the stage's execute-api endpoint (`https://<api_id>.execute-api.<region>.amazonaws.com/<stage>`), also with a custom domain; POST to `<this>/@connections/<connectionId>` to send. This is the functions' `WS_MANAGEMENT_ENDPOINT`."
  value       = local.management_endpoint
}

output "api_id" {
  description = "ID of the WebSocket API."
  value       = aws_apigatewayv2_api.this.id
}

output "api_endpoint" {
  description = "Default endpoint of the API (`wss://<api_id>.execute-api.<region>.amazonaws.com`), without the stage."
  value       = aws_apigatewayv2_api.this.api_endpoint
}

output "api_execution_arn" {
  description = "Execution ARN of the API (prefix of `execute-api:ManageConnections` and `lambda:InvokeFunction` source ARNs)."
  value       = aws_apigatewayv2_api.this.execution_arn
}

output "stage_name" {
  description = "Name of the stage."
  value       = aws_apigatewayv2_stage.this.name
}

output "stage_execution_arn" {
  description = "Execution ARN of the stage; grant `execute-api:ManageConnections` on `<this>/POST/@connections/*` to other senders."
  value       = aws_apigatewayv2_stage.this.execution_arn
}

output "access_log_group_name" {
  description = "CloudWatch log group of the stage's access logs (null when access logs are off)."
  value       = try(aws_cloudwatch_log_group.access[0].name, null)
}

################################################################################
# Custom domain
################################################################################

output "custom_domain_target" {
  description = "Where to point the custom domain's DNS alias record: `domain_name` and `hosted_zone_id` of the API Gateway regional endpoint (null without a custom domain)."
  value = try({
    domain_name    = aws_apigatewayv2_domain_name.this[0].domain_name_configuration[0].target_domain_name
    hosted_zone_id = aws_apigatewayv2_domain_name.this[0].domain_name_configuration[0].hosted_zone_id
  }, null)
}

################################################################################
# DynamoDB
################################################################################

output "dynamodb_table_name" {
  description = "Name of the connection table (`WS_TABLE_NAME`)."
  value       = aws_dynamodb_table.this.name
}

output "dynamodb_table_arn" {
  description = "ARN of the connection table."
  value       = aws_dynamodb_table.this.arn
}

################################################################################
# Lambda functions
################################################################################

output "function_names" {
  description = "Function names by role (`websocket`, `publisher`, `deployer`, `authorizer` in mode jwt, `fanout` with distributed fan-out, `pusher` with `pusher.enabled`)."
  value       = merge({ for fn, f in aws_lambda_function.this : fn => f.function_name }, { for f in aws_lambda_function.pusher : "pusher" => f.function_name })
}

output "function_arns" {
  description = "Function ARNs by role (as `function_names`)."
  value       = merge({ for fn, f in aws_lambda_function.this : fn => f.arn }, { for f in aws_lambda_function.pusher : "pusher" => f.arn })
}

output "publisher_function_name" {
  description = "Name of the publisher function: invoke it with `{\"action\":\"sendToChannel\",\"channel\":\"news\",\"data\":{...}}` and the other publisher commands."
  value       = aws_lambda_function.this["publisher"].function_name
}

output "publisher_function_arn" {
  description = "ARN of the publisher function."
  value       = aws_lambda_function.this["publisher"].arn
}

output "publisher_invoke_policy_json" {
  description = "IAM policy document (JSON) that allows `lambda:InvokeFunction` on the publisher only; attach it to your backend's role."
  value = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid      = "InvokeWebSocketPublisher"
      Effect   = "Allow"
      Action   = ["lambda:InvokeFunction"]
      Resource = [aws_lambda_function.this["publisher"].arn]
    }]
  })
}

output "role_arns" {
  description = "IAM role ARNs of the functions, by role (as `function_names`)."
  value       = merge({ for fn, r in aws_iam_role.function : fn => r.arn }, { for r in aws_iam_role.pusher : "pusher" => r.arn })
}

output "function_log_group_names" {
  description = "CloudWatch log groups of the functions, by role (as `function_names`)."
  value       = merge({ for fn, g in aws_cloudwatch_log_group.function : fn => g.name }, { for g in aws_cloudwatch_log_group.pusher : "pusher" => g.name })
}

output "authorizer_id" {
  description = "ID of the `$connect` REQUEST authorizer (null with mode none)."
  value       = try(aws_apigatewayv2_authorizer.this[0].id, null)
}

output "lambda_artifact_source" {
  description = "Where the functions' zips come from: `lambda_artifacts` (given), `bundled` (the release tree's `dist/<arch>/<function>.zip`, built from exactly these sources) or `build` (compiled from `lambda/` with Go at apply)."
  value       = local.artifact_source
}

output "cleanup_rule_arn" {
  description = "ARN of the EventBridge rule that runs the publisher's cleanup (null when disabled)."
  value       = try(aws_cloudwatch_event_rule.cleanup[0].arn, null)
}

################################################################################
# Lifecycle events
################################################################################

output "event_bus_name" {
  description = "Name (or ARN, when an existing bus was given by ARN) of the lifecycle event bus (`WS_EVENT_BUS_NAME`); null when events are off."
  value       = local.event_bus_name
}

output "event_bus_arn" {
  description = "ARN of the lifecycle event bus; null when events are off."
  value       = local.event_bus_arn
}

################################################################################
# Distributed fan-out
################################################################################

output "fanout_queue_url" {
  description = "URL of the fan-out queue (`WS_FANOUT_QUEUE_URL`); null when distributed fan-out is off."
  value       = try(aws_sqs_queue.fanout[0].url, null)
}

output "fanout_queue_arn" {
  description = "ARN of the fan-out queue; null when distributed fan-out is off."
  value       = try(aws_sqs_queue.fanout[0].arn, null)
}

output "fanout_dlq_url" {
  description = "URL of the fan-out dead-letter queue (batches that failed `max_receive_count` deliveries); null when distributed fan-out is off."
  value       = try(aws_sqs_queue.fanout_dlq[0].url, null)
}

output "fanout_dlq_arn" {
  description = "ARN of the fan-out dead-letter queue (alarm on its `ApproximateNumberOfMessagesVisible`); null when distributed fan-out is off."
  value       = try(aws_sqs_queue.fanout_dlq[0].arn, null)
}

output "fanout_function_name" {
  description = "Name of the fan-out worker function; null when distributed fan-out is off."
  value       = try(aws_lambda_function.this["fanout"].function_name, null)
}

output "fanout_function_arn" {
  description = "ARN of the fan-out worker function; null when distributed fan-out is off."
  value       = try(aws_lambda_function.this["fanout"].arn, null)
}

################################################################################
# Monitoring
################################################################################

output "metrics_namespace" {
  description = "CloudWatch namespace of the functions' metrics (Embedded Metric Format, dimension `Function`)."
  value       = local.metrics_namespace
}

output "dashboard_name" {
  description = "Name of the CloudWatch dashboard; null when `dashboard_enabled` is false."
  value       = try(aws_cloudwatch_dashboard.this[0].dashboard_name, null)
}

output "dashboard_url" {
  description = "Console URL of the CloudWatch dashboard (the partition's console); null when `dashboard_enabled` is false."
  value       = try("${local.console_url}/cloudwatch/home?region=${local.region}#dashboards:name=${aws_cloudwatch_dashboard.this[0].dashboard_name}", null)
}

output "alarm_arns" {
  description = "ARNs of the CloudWatch alarms the module created, by alarm (`dlq_not_empty`, `function_errors_<function>`, `api_execution_errors`, `pusher_api_execution_errors` and `pusher_http_errors` in Pusher mode, `dynamodb_throttles`, `throttled_share`, `deliveries_lost`); alarms turned off are absent."
  value = merge(
    { for a in aws_cloudwatch_metric_alarm.dlq_not_empty : "dlq_not_empty" => a.arn },
    { for fn, a in aws_cloudwatch_metric_alarm.function_errors : "function_errors_${fn}" => a.arn },
    { for a in aws_cloudwatch_metric_alarm.api_execution_errors : "api_execution_errors" => a.arn },
    { for k, a in aws_cloudwatch_metric_alarm.pusher_api : k => a.arn },
    { for a in aws_cloudwatch_metric_alarm.dynamodb_throttles : "dynamodb_throttles" => a.arn },
    { for a in aws_cloudwatch_metric_alarm.throttled_share : "throttled_share" => a.arn },
    { for a in aws_cloudwatch_metric_alarm.deliveries_lost : "deliveries_lost" => a.arn },
  )
}

################################################################################
# Pusher
################################################################################

output "pusher_host" {
  description = "Host of the Pusher mode (`PUSHER_HOST`, Echo's `wsHost`): `pusher.alias`, or the CloudFront name when there is none or it is a wildcard (`*.example.com` names no one host); null when Pusher mode is off."
  value       = local.pusher_enabled ? local.pusher_host : null
}

output "pusher_port" {
  description = "Port of the Pusher host (`PUSHER_PORT`): 443; null when Pusher mode is off."
  value       = local.pusher_enabled ? 443 : null
}

output "pusher_scheme" {
  description = "Scheme of the Pusher host (`PUSHER_SCHEME`): https; null when Pusher mode is off."
  value       = local.pusher_enabled ? "https" : null
}

output "pusher_app_id" {
  description = "Pusher app id (`PUSHER_APP_ID`); null when Pusher mode is off."
  value       = local.pusher_enabled ? var.pusher.app_id : null
}

output "pusher_key" {
  description = "Pusher app key (`PUSHER_APP_KEY`); null when Pusher mode is off."
  value       = local.pusher_enabled ? var.pusher.key : null
}

output "pusher_env" {
  description = "The `.env` lines of a Laravel app (`PUSHER_*`, `VITE_PUSHER_*`). The secret is not in it: a comment says where to read it (SSM parameter or Secrets Manager secret). Null when Pusher mode is off."
  value = !local.pusher_enabled ? null : join("\n", [
    "BROADCAST_CONNECTION=pusher",
    "PUSHER_APP_ID=${var.pusher.app_id}",
    "PUSHER_APP_KEY=${var.pusher.key}",
    var.pusher.secret_ssm_parameter != null ?
    "# PUSHER_APP_SECRET: aws ssm get-parameter --region ${local.region} --with-decryption --name ${var.pusher.secret_ssm_parameter} --query Parameter.Value --output text" :
    "# PUSHER_APP_SECRET: aws secretsmanager get-secret-value --region ${local.region} --secret-id ${coalesce(var.pusher.secret_arn, "-")} --query SecretString --output text",
    "PUSHER_APP_SECRET=",
    "PUSHER_HOST=${coalesce(local.pusher_host, "-")}",
    "PUSHER_PORT=443",
    "PUSHER_SCHEME=https",
    "PUSHER_APP_CLUSTER=mt1",
    "",
    "VITE_PUSHER_APP_KEY=\"$${PUSHER_APP_KEY}\"",
    "VITE_PUSHER_HOST=\"$${PUSHER_HOST}\"",
    "VITE_PUSHER_PORT=\"$${PUSHER_PORT}\"",
    "VITE_PUSHER_SCHEME=\"$${PUSHER_SCHEME}\"",
    "VITE_PUSHER_APP_CLUSTER=\"$${PUSHER_APP_CLUSTER}\"",
    "",
  ])
}

output "pusher_cloudfront_domain_name" {
  description = "The distribution's `*.cloudfront.net` name (the target of a DNS record for `pusher.alias`); null when Pusher mode is off."
  value       = try(aws_cloudfront_distribution.pusher[0].domain_name, null)
}

output "pusher_cloudfront_distribution_id" {
  description = "Id of the Pusher CloudFront distribution; null when Pusher mode is off."
  value       = try(aws_cloudfront_distribution.pusher[0].id, null)
}

output "pusher_websocket_url" {
  description = "The Pusher WebSocket API's own stage URL (execute-api). Clients use `pusher_host` instead: a stage refuses the `/app/{key}` path pusher-js adds. Null when Pusher mode is off."
  value       = local.pusher_enabled ? "${local.pusher_ws_endpoint}/${var.stage_name}" : null
}

output "pusher_management_endpoint" {
  description = "The `@connections` endpoint of the Pusher stage (`WS_MANAGEMENT_ENDPOINT` of the Pusher function); null when Pusher mode is off."
  value       = local.pusher_enabled ? local.pusher_management_url : null
}

output "pusher_function_name" {
  description = "Name of the Pusher function (WebSocket routes, welcome step and HTTP API); null when Pusher mode is off."
  value       = try(aws_lambda_function.pusher[0].function_name, null)
}
