################################################################################
# Pusher mode (var.pusher): a second WebSocket API that speaks the Pusher
# Channels protocol 7, the Pusher HTTP API, and one CloudFront host in front of
# both. The function is the websocket binary (same zip) with WS_PUSHER_*
# settings; it shares the connection table with protocol v1. See docs/pusher.md.
#
# /apps/* goes to an API Gateway HTTP API, not a Lambda function URL: CloudFront
# can sign requests to a function URL (origin access control), but then every
# POST must carry x-amz-content-sha256, which the Pusher server SDKs never send,
# so the URL would have to be auth type NONE and reachable by anyone beside
# CloudFront. The HTTP API is public too (requests are HMAC-signed by the SDKs
# either way), but it only routes the six Pusher API paths, throttles and
# writes access logs like the WebSocket stage.
################################################################################

locals {
  pusher_enabled = var.pusher.enabled
  pusher_count   = local.pusher_enabled ? 1 : 0

  pusher_function_name = "${var.name}-pusher"
  # Built from the name, not the function, so the role's policy (which the
  # function depends on) can name the function for the welcome self-invoke.
  pusher_function_arn = "arn:${local.partition}:lambda:${local.region}:${local.account_id}:function:${local.pusher_function_name}"

  pusher_ws_endpoint = try(aws_apigatewayv2_api.pusher[0].api_endpoint, "")
  # The host part of "wss://ID.execute-api.REGION.amazonaws.com" (and of the
  # HTTP API's https:// endpoint): the CloudFront origins.
  pusher_ws_domain      = try(split("/", local.pusher_ws_endpoint)[2], "")
  pusher_http_domain    = try(split("/", aws_apigatewayv2_api.pusher_http[0].api_endpoint)[2], "")
  pusher_management_url = "${replace(local.pusher_ws_endpoint, "wss://", "https://")}/${var.stage_name}"

  # The host clients connect to: the alias, unless it is a wildcard (which
  # names no host), else the distribution's *.cloudfront.net name.
  pusher_host = var.pusher.alias != null && !startswith(coalesce(var.pusher.alias, "-"), "*.") ? var.pusher.alias : try(aws_cloudfront_distribution.pusher[0].domain_name, null)

  pusher_secret_parameter_arn = var.pusher.secret_ssm_parameter == null ? null : (
    startswith(var.pusher.secret_ssm_parameter, "arn:") ? var.pusher.secret_ssm_parameter : "arn:${local.partition}:ssm:${local.region}:${local.account_id}:parameter/${trimprefix(var.pusher.secret_ssm_parameter, "/")}"
  )

  # The Pusher HTTP API, route by route (docs/pusher.md "The HTTP API").
  pusher_http_routes = toset([
    "POST /apps/{app_id}/events",
    "POST /apps/{app_id}/batch_events",
    "GET /apps/{app_id}/channels",
    "GET /apps/{app_id}/channels/{channel_name}",
    "GET /apps/{app_id}/channels/{channel_name}/users",
    "POST /apps/{app_id}/users/{user_id}/terminate_connections",
  ])

  # Sends above distributed_fanout.threshold go to the fan-out worker, as the
  # protocol v1 functions' do (WS_FANOUT_*, fanout_send_statements); their
  # batches name the Pusher stage's endpoint, which the worker may post to.
  # Its metrics go to the deployment's namespace; the binary tags them
  # Function=pusher when it runs in Pusher mode (docs/operations.md).
  pusher_environment = merge(
    local.sender_environment,
    local.metrics_environment,
    local.fanout_send_environment,
    local.go_runtime_environment[var.pusher.memory_size],
    {
      WS_MANAGEMENT_ENDPOINT         = local.pusher_management_url
      WS_MAX_CHANNELS_PER_CONNECTION = tostring(var.pusher.max_channels_per_connection)
      WS_PUSHER_APP_ID               = var.pusher.app_id
      WS_PUSHER_APP_KEY              = var.pusher.key
      WS_PUSHER_CLIENT_EVENTS        = tostring(var.pusher.client_events)
      WS_PUSHER_CLIENT_EVENT_RATE    = tostring(var.pusher.client_event_rate)
      WS_PUSHER_MAX_PRESENCE_USERS   = tostring(var.pusher.presence_max_members)
      WS_PUSHER_ACTIVITY_TIMEOUT     = tostring(var.pusher.activity_timeout)
    },
    var.pusher.secret_ssm_parameter == null ? {} : { WS_PUSHER_APP_SECRET_SSM_PARAMETER = var.pusher.secret_ssm_parameter },
    var.pusher.secret_arn == null ? {} : { WS_PUSHER_APP_SECRET_ARN = var.pusher.secret_arn },
    local.events_enabled ? {
      WS_EVENT_BUS_NAME = local.event_bus_name
      WS_EVENT_SOURCE   = var.event_bus.source
    } : {},
    # Channel history numbers and keeps Pusher events too (docs/pusher.md).
    length(var.history) > 0 ? {
      WS_HISTORY = local.runtime_environment.WS_HISTORY
    } : {},
  )

  pusher_statements = concat(
    [
      {
        Sid      = "WriteOwnLogs"
        Effect   = "Allow"
        Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
        Resource = ["${try(aws_cloudwatch_log_group.pusher[0].arn, "")}:*"]
      },
    ],
    # The table (and its key) and POST/DELETE on the Pusher stage (iam.tf).
    local.connection_statements["pusher"],
    [
      {
        # $connect hands connection_established to an asynchronous invoke of itself.
        Sid      = "WelcomeSelfInvoke"
        Effect   = "Allow"
        Action   = ["lambda:InvokeFunction"]
        Resource = [local.pusher_function_arn]
      },
    ],
    local.pusher_secret_parameter_arn == null ? [] : [{
      Sid      = "ReadAppSecretParameter"
      Effect   = "Allow"
      Action   = ["ssm:GetParameter"]
      Resource = [local.pusher_secret_parameter_arn]
    }],
    var.pusher.secret_arn == null ? [] : [{
      Sid      = "ReadAppSecret"
      Effect   = "Allow"
      Action   = ["secretsmanager:GetSecretValue"]
      Resource = [var.pusher.secret_arn]
    }],
    var.pusher.secret_kms_key_arn == null ? [] : [{
      Sid      = "DecryptAppSecret"
      Effect   = "Allow"
      Action   = ["kms:Decrypt"]
      Resource = [var.pusher.secret_kms_key_arn]
      # Only as SSM or Secrets Manager decrypts the app secret with it.
      Condition = { StringEquals = { "kms:ViaService" = [
        local.pusher_secret_parameter_arn != null ? "ssm.${split(":", local.pusher_secret_parameter_arn)[3]}.${local.dns_suffix}" : "secretsmanager.${try(split(":", var.pusher.secret_arn)[3], local.region)}.${local.dns_suffix}"
      ] } }
    }],
    local.events_enabled ? [{
      Sid      = "LifecycleEvents"
      Effect   = "Allow"
      Action   = ["events:PutEvents"]
      Resource = [local.event_bus_arn]
    }] : [],
    # Sends above the threshold are enqueued for the fan-out worker.
    local.fanout_send_statements,
    local.xray_statements,
  )

  # CloudFront's managed policies (the same ids in every account).
  cloudfront_caching_disabled_policy_id           = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
  cloudfront_all_viewer_except_host_header_policy = "b689b0a8-53d0-40ab-baf2-68738e2966ac"
}

################################################################################
# Pusher: function, role, logs
################################################################################

resource "aws_cloudwatch_log_group" "pusher" {
  count = local.pusher_count

  name              = "/aws/lambda/${local.pusher_function_name}"
  retention_in_days = var.log_retention_in_days
  kms_key_id        = var.cloudwatch_logs_kms_key_arn
  tags              = var.tags
}

resource "aws_iam_role" "pusher" {
  count = local.pusher_count

  name        = local.role_names["pusher"]
  description = "Runs the ${local.pusher_function_name} Lambda function (Pusher protocol and HTTP API)"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "LambdaAssumeRole"
      Effect    = "Allow"
      Action    = "sts:AssumeRole"
      Principal = { Service = "lambda.amazonaws.com" }
      Condition = { StringEquals = { "aws:SourceAccount" = local.account_id } }
    }]
  })
  tags = var.tags
}

#tfsec:ignore:aws-iam-no-policy-wildcards The only wildcards are "<log group>:*" (the function's own log streams), "<table>/index/*" (this table's GSIs), "@connections/*" on the Pusher stage, and X-Ray's required resource "*" when tracing is on.
resource "aws_iam_role_policy" "pusher" {
  count = local.pusher_count

  name = local.pusher_function_name
  role = aws_iam_role.pusher[0].id
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = local.pusher_statements
  })
}

# The welcome (connection_established) is an asynchronous self-invocation
# that posts within a second of the handshake, retrying on its own; Lambda's
# own retries of a failed one (after a minute, then two) would post it long
# after pusher-js gave up and reconnected.
resource "aws_lambda_function_event_invoke_config" "pusher" {
  count = local.pusher_count

  function_name                = aws_lambda_function.pusher[0].function_name
  maximum_event_age_in_seconds = 60
  maximum_retry_attempts       = 0
}

#tfsec:ignore:aws-lambda-enable-tracing X-Ray tracing is opt-in (var.tracing_enabled): it adds cost and needs the xray:* actions on resource "*".
resource "aws_lambda_function" "pusher" {
  count = local.pusher_count

  function_name    = local.pusher_function_name
  description      = "Pusher protocol 7 and HTTP API of ${var.name}"
  role             = aws_iam_role.pusher[0].arn
  runtime          = "provided.al2023"
  handler          = "bootstrap"
  architectures    = [var.lambda_architecture]
  memory_size      = var.pusher.memory_size
  timeout          = var.pusher.timeout
  filename         = local.packages["websocket"].filename
  source_code_hash = local.packages["websocket"].source_code_hash

  environment {
    variables = local.pusher_environment
  }

  tracing_config {
    mode = var.tracing_enabled ? "Active" : "PassThrough"
  }

  tags = var.tags

  lifecycle {
    precondition {
      condition     = !startswith(coalesce(var.pusher.secret_ssm_parameter, "-"), "arn:") || try(split(":", var.pusher.secret_ssm_parameter)[3], local.region) == local.region
      error_message = "The pusher.secret_ssm_parameter ARN names another region than the module's (${local.region}): the function reads the parameter with its own region's SSM client. Copy the parameter into ${local.region}."
    }
    precondition {
      condition     = alltrue([for arn in compact([var.pusher.secret_arn, var.pusher.secret_kms_key_arn]) : split(":", arn)[3] == local.region])
      error_message = "The pusher.secret_arn or secret_kms_key_arn names another region than the module's (${local.region}): the function reads the secret with its own region's Secrets Manager client, which cannot reach another region's secret, and a KMS key decrypts only in its own region. Replicate the secret (or use a key) in ${local.region}."
    }
    precondition {
      condition     = sum(concat([0], [for k, v in local.pusher_environment : length(k) + length(v)])) <= 4096
      error_message = "The environment of the Pusher function (the websocket function's plus its WS_PUSHER_* settings) is larger than Lambda's 4 KB (4096 bytes) limit for all environment variables together (names and values). Long history rules (WS_HISTORY) are the usual cause: use fewer, broader patterns."
    }
  }

  depends_on = [
    terraform_data.build,
    aws_cloudwatch_log_group.pusher,
    aws_iam_role_policy.pusher,
  ]
}

################################################################################
# Pusher: WebSocket API (protocol 7)
################################################################################

resource "aws_apigatewayv2_api" "pusher" {
  count = local.pusher_count

  name                       = "${var.name}-pusher"
  description                = "Pusher protocol WebSocket API of ${var.name}"
  protocol_type              = "WEBSOCKET"
  route_selection_expression = "$request.body.event"
  tags                       = var.tags
}

resource "aws_apigatewayv2_integration" "pusher" {
  count = local.pusher_count

  api_id             = aws_apigatewayv2_api.pusher[0].id
  integration_type   = "AWS_PROXY"
  integration_method = "POST"
  integration_uri    = aws_lambda_function.pusher[0].invoke_arn
}

resource "aws_apigatewayv2_route" "pusher" {
  for_each = local.pusher_enabled ? toset(["$connect", "$disconnect", "$default"]) : toset([])

  api_id         = aws_apigatewayv2_api.pusher[0].id
  route_key      = each.key
  operation_name = each.key == "$connect" ? "Connect" : each.key == "$disconnect" ? "Disconnect" : null
  target         = "integrations/${aws_apigatewayv2_integration.pusher[0].id}"
  # Pusher apps authorise per channel (HMAC), not per connection.
  authorization_type = "NONE"
  # Subscription replies travel as the route response: no @connections call.
  route_response_selection_expression = each.key == "$default" ? "$default" : null
}

resource "aws_apigatewayv2_route_response" "pusher" {
  count = local.pusher_count

  api_id             = aws_apigatewayv2_api.pusher[0].id
  route_id           = aws_apigatewayv2_route.pusher["$default"].id
  route_response_key = "$default"
}

resource "aws_apigatewayv2_deployment" "pusher" {
  count = local.pusher_count

  api_id      = aws_apigatewayv2_api.pusher[0].id
  description = "Routes and integration of ${var.name}-pusher"

  triggers = {
    redeployment = sha1(jsonencode([
      aws_apigatewayv2_route.pusher,
      aws_apigatewayv2_route_response.pusher,
      aws_apigatewayv2_integration.pusher,
    ]))
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_cloudwatch_log_group" "pusher_access" {
  for_each = local.pusher_enabled && var.access_logs_enabled ? toset(["websocket", "http"]) : toset([])

  name              = "/aws/apigateway/${var.name}-pusher-${each.key}"
  retention_in_days = var.log_retention_in_days
  kms_key_id        = var.cloudwatch_logs_kms_key_arn
  tags              = var.tags
}

#tfsec:ignore:aws-api-gateway-enable-access-logging Access logs are on by default; var.access_logs_enabled turns them off for accounts without the API Gateway CloudWatch role.
resource "aws_apigatewayv2_stage" "pusher" {
  count = local.pusher_count

  api_id        = aws_apigatewayv2_api.pusher[0].id
  name          = var.stage_name
  description   = "Stage ${var.stage_name} of ${var.name}-pusher"
  deployment_id = aws_apigatewayv2_deployment.pusher[0].id

  default_route_settings {
    throttling_burst_limit   = var.throttling_burst_limit
    throttling_rate_limit    = var.throttling_rate_limit
    detailed_metrics_enabled = var.detailed_metrics_enabled
  }

  dynamic "access_log_settings" {
    for_each = var.access_logs_enabled ? [1] : []
    content {
      destination_arn = aws_cloudwatch_log_group.pusher_access["websocket"].arn
      format          = local.websocket_access_log_format
    }
  }

  tags = var.tags

  depends_on = [aws_api_gateway_account.this]
}

resource "aws_lambda_permission" "pusher_websocket" {
  count = local.pusher_count

  statement_id  = "AllowPusherWebSocketRoutes"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.pusher[0].function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.pusher[0].execution_arn}/${var.stage_name}/*"
}

################################################################################
# Pusher: HTTP API (/apps/{app_id}/...), payload 2.0 to the same function
################################################################################

resource "aws_apigatewayv2_api" "pusher_http" {
  count = local.pusher_count

  name          = "${var.name}-pusher-http"
  description   = "Pusher HTTP API of ${var.name}"
  protocol_type = "HTTP"
  tags          = var.tags
}

resource "aws_apigatewayv2_integration" "pusher_http" {
  count = local.pusher_count

  api_id                 = aws_apigatewayv2_api.pusher_http[0].id
  integration_type       = "AWS_PROXY"
  integration_method     = "POST"
  integration_uri        = aws_lambda_function.pusher[0].invoke_arn
  payload_format_version = "2.0"
}

resource "aws_apigatewayv2_route" "pusher_http" {
  for_each = local.pusher_enabled ? local.pusher_http_routes : toset([])

  api_id    = aws_apigatewayv2_api.pusher_http[0].id
  route_key = each.key
  target    = "integrations/${aws_apigatewayv2_integration.pusher_http[0].id}"
  # The function checks the Pusher signature (auth_key, auth_signature) itself.
  authorization_type = "NONE"
}

#tfsec:ignore:aws-api-gateway-enable-access-logging Access logs are on by default; var.access_logs_enabled turns them off for accounts without the API Gateway CloudWatch role.
resource "aws_apigatewayv2_stage" "pusher_http" {
  count = local.pusher_count

  api_id      = aws_apigatewayv2_api.pusher_http[0].id
  name        = "$default"
  description = "Pusher HTTP API of ${var.name}"
  auto_deploy = true

  default_route_settings {
    throttling_burst_limit   = var.throttling_burst_limit
    throttling_rate_limit    = var.throttling_rate_limit
    detailed_metrics_enabled = var.detailed_metrics_enabled
  }

  dynamic "access_log_settings" {
    for_each = var.access_logs_enabled ? [1] : []
    content {
      destination_arn = aws_cloudwatch_log_group.pusher_access["http"].arn
      format = jsonencode({
        requestId          = "$context.requestId"
        requestTime        = "$context.requestTime"
        routeKey           = "$context.routeKey"
        status             = "$context.status"
        sourceIp           = "$context.identity.sourceIp"
        userAgent          = "$context.identity.userAgent"
        responseLength     = "$context.responseLength"
        integrationLatency = "$context.integrationLatency"
        errorMessage       = "$context.error.message"
      })
    }
  }

  tags = var.tags

  depends_on = [aws_api_gateway_account.this]
}

resource "aws_lambda_permission" "pusher_http" {
  count = local.pusher_count

  statement_id  = "AllowPusherHttpApi"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.pusher[0].function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.pusher_http[0].execution_arn}/*/*/apps/*"
}

################################################################################
# Pusher: CloudFront, one host for pusher-js (/app/{key}) and the SDKs (/apps/*)
################################################################################

resource "aws_cloudfront_function" "pusher" {
  count = local.pusher_count

  name    = local.global_names["pusher-rewrite"]
  runtime = "cloudfront-js-2.0"
  comment = "Sends /app/{key} to the Pusher stage root with ?app_key={key}"
  publish = true
  code    = file("${path.module}/functions/pusher-rewrite.js")
}

# What the WebSocket handshake needs at the origin: the Sec-WebSocket-*
# headers and every query parameter (protocol, client, version, app_key).
# Never Host: API Gateway answers only to its own host name.
resource "aws_cloudfront_origin_request_policy" "pusher_websocket" {
  count = local.pusher_count

  name    = local.global_names["pusher-websocket"]
  comment = "Pusher WebSocket handshake of ${var.name}"

  headers_config {
    header_behavior = "whitelist"
    headers {
      items = ["Sec-WebSocket-Key", "Sec-WebSocket-Version", "Sec-WebSocket-Protocol", "Sec-WebSocket-Extensions", "User-Agent"]
    }
  }

  query_strings_config {
    query_string_behavior = "all"
  }

  cookies_config {
    cookie_behavior = "none"
  }
}

#tfsec:ignore:aws-cloudfront-enable-waf Attach a web ACL with web_acl_id outside the module if needed; every request is either a WebSocket handshake the runtime checks (app key) or an HMAC-signed HTTP API call.
#tfsec:ignore:aws-cloudfront-enable-logging The API Gateway stages behind it write access logs (access_logs_enabled); CloudFront standard logs need an S3 bucket the module does not own.
#tfsec:ignore:aws-cloudfront-use-secure-tls-policy Without pusher.alias CloudFront's default certificate is used, whose TLS policy cannot be chosen; with an alias the policy is TLSv1.2_2021.
resource "aws_cloudfront_distribution" "pusher" {
  count = local.pusher_count

  enabled         = true
  is_ipv6_enabled = true
  comment         = "Pusher host of ${var.name}"
  price_class     = var.pusher.price_class
  aliases         = var.pusher.alias == null ? [] : [var.pusher.alias]
  http_version    = "http2"

  origin {
    origin_id   = "pusher-websocket"
    domain_name = local.pusher_ws_domain
    # "/app/{key}" becomes "/", and CloudFront prepends the stage.
    origin_path = "/${var.stage_name}"

    custom_origin_config {
      http_port              = 80
      https_port             = 443
      origin_protocol_policy = "https-only"
      origin_ssl_protocols   = ["TLSv1.2"]
    }
  }

  origin {
    origin_id   = "pusher-http"
    domain_name = local.pusher_http_domain

    custom_origin_config {
      http_port              = 80
      https_port             = 443
      origin_protocol_policy = "https-only"
      origin_ssl_protocols   = ["TLSv1.2"]
    }
  }

  # pusher-js: wss://HOST/app/{key}?protocol=7&...
  default_cache_behavior {
    target_origin_id         = "pusher-websocket"
    viewer_protocol_policy   = "https-only"
    allowed_methods          = ["GET", "HEAD"]
    cached_methods           = ["GET", "HEAD"]
    compress                 = false
    cache_policy_id          = local.cloudfront_caching_disabled_policy_id
    origin_request_policy_id = aws_cloudfront_origin_request_policy.pusher_websocket[0].id

    function_association {
      event_type   = "viewer-request"
      function_arn = aws_cloudfront_function.pusher[0].arn
    }
  }

  # The Pusher HTTP API the server SDKs call: https://HOST/apps/{app_id}/...
  ordered_cache_behavior {
    path_pattern             = "/apps/*"
    target_origin_id         = "pusher-http"
    viewer_protocol_policy   = "https-only"
    allowed_methods          = ["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"]
    cached_methods           = ["GET", "HEAD"]
    compress                 = false
    cache_policy_id          = local.cloudfront_caching_disabled_policy_id
    origin_request_policy_id = local.cloudfront_all_viewer_except_host_header_policy
  }

  restrictions {
    geo_restriction {
      restriction_type = "none"
    }
  }

  viewer_certificate {
    cloudfront_default_certificate = var.pusher.alias == null
    acm_certificate_arn            = var.pusher.acm_certificate_arn
    ssl_support_method             = var.pusher.alias == null ? null : "sni-only"
    minimum_protocol_version       = var.pusher.alias == null ? "TLSv1" : "TLSv1.2_2021"
  }

  tags = var.tags
}
