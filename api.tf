################################################################################
# API Gateway WebSocket API
################################################################################

locals {
  # Custom routes handled by the user's functions. Keyed by route key (known at
  # plan time even when the function is created in the same apply).
  user_routes = { for key, r in var.routes : key => r if r.handler == "lambda" }
  # Custom routes the built-in function answers (as lifecycle events).
  builtin_custom_routes = { for key, r in var.routes : key => r if r.handler == "websocket" }

  # Route key => integration key ("websocket" or "route:<key>") and whether
  # the route answers the sender through a route response.
  all_routes = merge(
    {
      "$connect"    = { integration = "websocket", two_way = false }
      "$disconnect" = { integration = "websocket", two_way = false }
      # The runtime answers subscribe/publish/ping/... in the response body.
      "$default" = { integration = "websocket", two_way = true }
    },
    { for key, r in var.routes : key => { integration = r.handler == "lambda" ? "route:${key}" : "websocket", two_way = r.two_way } },
  )

  integration_uris = merge(
    { websocket = aws_lambda_function.this["websocket"].invoke_arn },
    {
      for key, r in local.user_routes : "route:${key}" =>
      "arn:${split(":", r.function_arn)[1]}:apigateway:${split(":", r.function_arn)[3]}:lambda:path/2015-03-31/functions/${r.function_arn}/invocations"
    },
  )
}

resource "aws_apigatewayv2_api" "this" {
  name                       = var.name
  description                = "WebSocket API ${var.name}"
  protocol_type              = "WEBSOCKET"
  route_selection_expression = "$request.body.action"
  tags                       = var.tags
}

resource "aws_apigatewayv2_integration" "this" {
  for_each = local.integration_uris

  api_id             = aws_apigatewayv2_api.this.id
  integration_type   = "AWS_PROXY"
  integration_method = "POST"
  integration_uri    = each.value

  # Removed ones are gone before the redeploy (terraform_data.route_set).
  depends_on = [terraform_data.route_set]
}

resource "aws_apigatewayv2_route" "this" {
  for_each = local.all_routes

  api_id         = aws_apigatewayv2_api.this.id
  route_key      = each.key
  operation_name = each.key == "$connect" ? "Connect" : each.key == "$disconnect" ? "Disconnect" : null
  target         = "integrations/${aws_apigatewayv2_integration.this[each.value.integration].id}"

  # The REQUEST authorizer can only run on $connect; the connection carries its
  # result (userId, channels) to every later route.
  authorization_type = each.key == "$connect" && local.authorizer_enabled ? "CUSTOM" : "NONE"
  authorizer_id      = each.key == "$connect" && local.authorizer_enabled ? aws_apigatewayv2_authorizer.this[0].id : null

  route_response_selection_expression = each.value.two_way ? "$default" : null

  # A removed route is destroyed before the route set marker is replaced, so
  # before the redeploy (terraform_data.route_set).
  depends_on = [terraform_data.route_set]

  lifecycle {
    # The built-in function has no code for a custom route: it turns the frame
    # into a websocket.message lifecycle event, which needs the event bus.
    precondition {
      condition     = local.events_enabled || !contains(keys(local.builtin_custom_routes), each.key)
      error_message = "The custom route \"${each.key}\" has handler = \"websocket\" (the default), but lifecycle events are off (event_bus = null). The built-in function has no code for custom routes: it publishes each such frame as a websocket.message event (routeKey, body) on the event bus for an EventBridge rule to consume, and without events it can only answer unknown_action. Set event_bus (for example { create = true }), or send the route to your own function with handler = \"lambda\" and function_arn."
    }
  }
}

resource "aws_apigatewayv2_route_response" "this" {
  for_each = { for key, r in local.all_routes : key => r if r.two_way }

  api_id             = aws_apigatewayv2_api.this.id
  route_id           = aws_apigatewayv2_route.this[each.key].id
  route_response_key = "$default"

  depends_on = [terraform_data.route_set]
}

################################################################################
# Deployments: the first one here, every later one by the deployer function
################################################################################

# A deployment is a snapshot of the routes; a removed route must be gone
# before the snapshot that leaves it out is made. Terraform orders destroys
# only against what depends on the destroyed resource, and a
# create_before_destroy resource forces that onto everything it depends on
# (routes included), so a deployment resource that depends on the routes is
# always made before a removed route is destroyed. Instead:
#
# - this marker is replaced whenever the set of routes, route responses,
#   integrations or the authorizer changes. Those depend on it, so Terraform
#   destroys a removed one before it destroys the old marker, and creates the
#   new marker after that;
# - the redeploy (aws_lambda_invocation.redeploy) depends on the marker and on
#   every route, so it runs after the removed ones are gone and after the new
#   ones exist, in the same apply. Its destroy is a no-op (lifecycle_scope
#   CREATE_ONLY), so it needs no create_before_destroy.
#
# Nothing create_before_destroy may depend on the routes or the marker:
# Terraform would force create_before_destroy onto them and undo the order.
# TestRemovedRouteIsUndeployedInOneApply proves it.
resource "terraform_data" "route_set" {
  triggers_replace = {
    routes          = sort(keys(local.all_routes))
    route_responses = sort([for key, r in local.all_routes : key if r.two_way])
    integrations    = sort(concat(["websocket"], [for key in keys(local.user_routes) : "route:${key}"]))
    authorizer      = local.authorizer_enabled
  }
}

locals {
  # Everything a deployment snapshots; the deployer runs again when it changes.
  deployment_hash = sha1(jsonencode([
    aws_apigatewayv2_route.this,
    aws_apigatewayv2_route_response.this,
    aws_apigatewayv2_integration.this,
    aws_apigatewayv2_authorizer.this,
    var.routes,
  ]))
}

# The stage's first deployment. Later ones are the deployer's, so its
# triggers and description are ignored: a stack made before the deployer
# existed keeps this deployment (and its stage) on upgrade.
resource "aws_apigatewayv2_deployment" "this" {
  api_id      = aws_apigatewayv2_api.this.id
  description = "First deployment of ${var.name}"

  # API Gateway refuses to deploy an API without routes.
  depends_on = [
    aws_apigatewayv2_route.this,
    aws_apigatewayv2_route_response.this,
    aws_apigatewayv2_integration.this,
    aws_apigatewayv2_authorizer.this,
  ]

  lifecycle {
    ignore_changes = [triggers, description]
  }
}

# Makes a new deployment and moves the stage onto it (CreateDeployment with
# stageName) whenever the routes, route responses, integrations or authorizer
# change, after the removed ones are gone (terraform_data.route_set), and
# whenever the stage is replaced (a new stage_name): a new stage starts on the
# first deployment (ignore_changes above), which may lack later routes and
# the authorizer. A failed deployment fails the apply.
resource "aws_lambda_invocation" "redeploy" {
  function_name = aws_lambda_function.this["deployer"].function_name
  input = jsonencode({
    description = "Routes, integrations and authorizer of ${var.name} (${local.deployment_hash})"
    hash        = local.deployment_hash
  })
  triggers = {
    deployment = local.deployment_hash
    stage      = aws_apigatewayv2_stage.this.id
  }

  depends_on = [
    terraform_data.route_set,
    aws_apigatewayv2_route.this,
    aws_apigatewayv2_route_response.this,
    aws_apigatewayv2_integration.this,
    aws_apigatewayv2_authorizer.this,
    aws_apigatewayv2_stage.this,
    aws_iam_role_policy.function,
  ]
}

resource "aws_cloudwatch_log_group" "access" {
  count = var.access_logs_enabled ? 1 : 0

  name              = "/aws/apigateway/${var.name}/${var.stage_name}"
  retention_in_days = var.log_retention_in_days
  kms_key_id        = var.cloudwatch_logs_kms_key_arn
  tags              = var.tags
}

################################################################################
# API Gateway's account-level CloudWatch Logs role (opt in, account-wide)
################################################################################

# API Gateway writes access logs with one role per account and region, set in
# its account settings; a stage with access logs fails to deploy while none is
# set. Only with create_api_gateway_cloudwatch_role: this replaces the role of
# every API of the account in this region.
resource "aws_iam_role" "api_gateway_cloudwatch" {
  count = var.create_api_gateway_cloudwatch_role ? 1 : 0

  name        = local.role_names["apigateway-logs"]
  description = "API Gateway account-level CloudWatch Logs role (account settings of ${local.region}), set by the WebSocket module ${var.name}"
  # API Gateway's documented trust policy: it assumes the role for every API
  # of the account, so there is no per-API condition to add.
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "ApiGatewayAssumeRole"
      Effect    = "Allow"
      Action    = "sts:AssumeRole"
      Principal = { Service = "apigateway.amazonaws.com" }
    }]
  })
  tags = var.tags
}

# The actions of AWS's AmazonAPIGatewayPushToCloudWatchLogs policy, named one
# by one, on this account's log groups in this region only (the managed policy
# allows them on "*"). Not narrower: the role serves every API of the account
# in the region, and API Gateway names execution log groups itself.
#tfsec:ignore:aws-iam-no-policy-wildcards "log-group:*" is every log group of this account and region: the account-level role writes the logs of every API there (access log groups of any name, execution log groups API Gateway creates).
resource "aws_iam_role_policy" "api_gateway_cloudwatch" {
  count = var.create_api_gateway_cloudwatch_role ? 1 : 0

  name = "${var.name}-apigateway-logs"
  role = aws_iam_role.api_gateway_cloudwatch[0].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid    = "ApiGatewayLogs"
      Effect = "Allow"
      Action = [
        "logs:CreateLogGroup",
        "logs:CreateLogStream",
        "logs:DescribeLogGroups",
        "logs:DescribeLogStreams",
        "logs:PutLogEvents",
        "logs:GetLogEvents",
        "logs:FilterLogEvents",
      ]
      Resource = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:*"]
    }]
  })
}

# Account-wide, region-wide: the one CloudWatch Logs role of API Gateway in
# this account and region. Destroying it may leave the setting in place or
# reset it, depending on the provider version.
resource "aws_api_gateway_account" "this" {
  count = var.create_api_gateway_cloudwatch_role ? 1 : 0

  cloudwatch_role_arn = aws_iam_role.api_gateway_cloudwatch[0].arn

  # API Gateway checks the role's permissions when it is set.
  depends_on = [aws_iam_role_policy.api_gateway_cloudwatch]
}

#tfsec:ignore:aws-api-gateway-enable-access-logging Access logs are on by default; var.access_logs_enabled turns them off for accounts without the API Gateway CloudWatch role.
resource "aws_apigatewayv2_stage" "this" {
  api_id        = aws_apigatewayv2_api.this.id
  name          = var.stage_name
  description   = "Stage ${var.stage_name} of ${var.name}"
  deployment_id = aws_apigatewayv2_deployment.this.id

  default_route_settings {
    throttling_burst_limit   = var.throttling_burst_limit
    throttling_rate_limit    = var.throttling_rate_limit
    detailed_metrics_enabled = var.detailed_metrics_enabled
  }

  dynamic "access_log_settings" {
    for_each = var.access_logs_enabled ? [1] : []
    content {
      destination_arn = aws_cloudwatch_log_group.access[0].arn
      format          = local.websocket_access_log_format
    }
  }

  tags = var.tags

  # With access logs on, the account's CloudWatch Logs role must be set first.
  depends_on = [aws_api_gateway_account.this]

  lifecycle {
    # The deployer moves the stage to each new deployment.
    ignore_changes = [deployment_id]
  }
}

# API Gateway may invoke the websocket function for any route of this stage.
resource "aws_lambda_permission" "websocket" {
  statement_id  = "AllowApiGatewayRoutes"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this["websocket"].function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.this.execution_arn}/${var.stage_name}/*"
}

# User functions behind custom routes: one permission per route.
resource "aws_lambda_permission" "route" {
  for_each = local.user_routes

  statement_id  = "AllowApiGateway-${var.name}-${substr(sha1(each.key), 0, 12)}"
  action        = "lambda:InvokeFunction"
  function_name = each.value.function_arn
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.this.execution_arn}/${var.stage_name}/${each.key}"
}

################################################################################
# Authorizer ($connect only)
################################################################################

locals {
  authorizer_function_arn = local.jwt_enabled ? aws_lambda_function.this["authorizer"].arn : var.authorizer.function_arn
  authorizer_uri = local.jwt_enabled ? aws_lambda_function.this["authorizer"].invoke_arn : (
    var.authorizer.mode == "lambda" ? "arn:${split(":", var.authorizer.function_arn)[1]}:apigateway:${split(":", var.authorizer.function_arn)[3]}:lambda:path/2015-03-31/functions/${var.authorizer.function_arn}/invocations" : null
  )
}

resource "aws_apigatewayv2_authorizer" "this" {
  count = local.authorizer_enabled ? 1 : 0

  api_id           = aws_apigatewayv2_api.this.id
  name             = "${var.name}-connect"
  authorizer_type  = "REQUEST"
  authorizer_uri   = local.authorizer_uri
  identity_sources = var.authorizer.identity_sources

  depends_on = [terraform_data.route_set]
}

resource "aws_lambda_permission" "authorizer" {
  count = local.authorizer_enabled ? 1 : 0

  statement_id  = "AllowApiGatewayAuthorizer-${var.name}"
  action        = "lambda:InvokeFunction"
  function_name = local.authorizer_function_arn
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.this.execution_arn}/authorizers/${aws_apigatewayv2_authorizer.this[0].id}"
}

################################################################################
# Custom domain (optional)
################################################################################

resource "aws_apigatewayv2_domain_name" "this" {
  count = var.custom_domain == null ? 0 : 1

  domain_name = var.custom_domain.domain_name

  domain_name_configuration {
    certificate_arn = var.custom_domain.certificate_arn
    endpoint_type   = "REGIONAL"
    security_policy = "TLS_1_2"
  }

  tags = var.tags

  lifecycle {
    precondition {
      condition     = split(":", var.custom_domain.certificate_arn)[3] == local.region
      error_message = "The custom_domain.certificate_arn is in ${split(":", var.custom_domain.certificate_arn)[3]}, the API in ${local.region}: a REGIONAL domain name needs an ACM certificate in the API's own region."
    }
  }
}

resource "aws_apigatewayv2_api_mapping" "this" {
  count = var.custom_domain == null ? 0 : 1

  api_id          = aws_apigatewayv2_api.this.id
  domain_name     = aws_apigatewayv2_domain_name.this[0].id
  stage           = aws_apigatewayv2_stage.this.id
  api_mapping_key = var.custom_domain.api_mapping_key
}

################################################################################
# Lifecycle events (optional)
################################################################################

locals {
  event_bus_input = try(var.event_bus.name, null)
  event_bus_name = !local.events_enabled ? null : (
    try(var.event_bus.create, false) ? aws_cloudwatch_event_bus.this[0].name : local.event_bus_input
  )
  event_bus_arn = !local.events_enabled ? null : (
    try(var.event_bus.create, false) ? aws_cloudwatch_event_bus.this[0].arn : (
      startswith(local.event_bus_input, "arn:") ? local.event_bus_input : "arn:${local.partition}:events:${local.region}:${local.account_id}:event-bus/${local.event_bus_input}"
    )
  )
}

resource "aws_cloudwatch_event_bus" "this" {
  count = try(var.event_bus.create, false) ? 1 : 0

  name = coalesce(var.event_bus.name, "${var.name}-websocket")
  tags = var.tags
}

locals {
  # The access log line of both WebSocket stages (Pusher mode's too, whose
  # authorizer fields stay "-"): one JSON object per request, connect,
  # message and disconnect.
  websocket_access_log_format = jsonencode({
    requestId          = "$context.requestId"
    extendedRequestId  = "$context.extendedRequestId"
    requestTime        = "$context.requestTime"
    routeKey           = "$context.routeKey"
    eventType          = "$context.eventType"
    connectionId       = "$context.connectionId"
    messageId          = "$context.messageId"
    status             = "$context.status"
    sourceIp           = "$context.identity.sourceIp"
    userAgent          = "$context.identity.userAgent"
    userId             = "$context.authorizer.userId"
    integrationLatency = "$context.integrationLatency"
    integrationStatus  = "$context.integration.status"
    errorMessage       = "$context.error.message"
    authorizerError    = "$context.authorizer.error"
    disconnectCode     = "$context.disconnectStatusCode"
  })
}
