locals {
  tags = {
    Example = "complete"
    Name    = var.name
  }
}

################################################################################
# JWT secret for the built-in authorizer, kept in Secrets Manager
################################################################################

data "aws_secretsmanager_random_password" "jwt" {
  count = var.jwt_secret == null ? 1 : 0

  password_length     = 48
  exclude_punctuation = true
}

#tfsec:ignore:aws-ssm-secret-use-customer-key The example keeps the default aws/secretsmanager key; pass kms_key_id for a customer managed key (and authorizer.jwt.kms_key_arn to the module).
resource "aws_secretsmanager_secret" "jwt" {
  name                    = "${var.name}-jwt"
  description             = "HS256 secret of the ${var.name} WebSocket authorizer"
  recovery_window_in_days = 0
  tags                    = local.tags
}

resource "aws_secretsmanager_secret_version" "jwt" {
  secret_id     = aws_secretsmanager_secret.jwt.id
  secret_string = var.jwt_secret == null ? data.aws_secretsmanager_random_password.jwt[0].random_password : var.jwt_secret

  # The generated password differs on every read: keep the first one.
  lifecycle {
    ignore_changes = [secret_string]
  }
}

################################################################################
# A user function behind the custom route "echo"
################################################################################

locals {
  echo_zip = "${path.module}/.terraform/echo.zip"
}

# Zips echo/index.mjs at apply time with Go (the module itself needs no Go
# when its source is a bundled release); the function's source_code_hash
# comes from the source file, so plans are stable and the zip need not exist
# at plan time.
resource "terraform_data" "echo_zip" {
  triggers_replace = filesha256("${path.module}/echo/index.mjs")

  provisioner "local-exec" {
    working_dir = path.module
    command     = "go run ./echo/zip.go -out '${abspath(local.echo_zip)}' ./echo/index.mjs"
  }
}

resource "aws_iam_role" "echo" {
  name = "${var.name}-echo"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Action    = "sts:AssumeRole"
      Principal = { Service = "lambda.amazonaws.com" }
    }]
  })
  tags = local.tags
}

#tfsec:ignore:aws-cloudwatch-log-group-customer-key The demo function's logs use CloudWatch's default encryption; see the module's cloudwatch_logs_kms_key_arn for a customer key.
resource "aws_cloudwatch_log_group" "echo" {
  name              = "/aws/lambda/${var.name}-echo"
  retention_in_days = 14
  tags              = local.tags
}

#tfsec:ignore:aws-iam-no-policy-wildcards "<log group ARN>:*" names the log streams of the function's own log group, which are created at run time.
resource "aws_iam_role_policy" "echo" {
  name = "${var.name}-echo-logs"
  role = aws_iam_role.echo.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect   = "Allow"
      Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
      Resource = ["${aws_cloudwatch_log_group.echo.arn}:*"]
    }]
  })
}

#tfsec:ignore:aws-lambda-enable-tracing The echo function is a demo of a custom route integration.
resource "aws_lambda_function" "echo" {
  function_name    = "${var.name}-echo"
  description      = "Answers the custom route echo of ${var.name}"
  role             = aws_iam_role.echo.arn
  runtime          = "nodejs22.x" # nodejs24.x needs hashicorp/aws >= 6.19
  handler          = "index.handler"
  architectures    = ["arm64"]
  filename         = local.echo_zip
  source_code_hash = filebase64sha256("${path.module}/echo/index.mjs")
  timeout          = 5
  tags             = local.tags

  depends_on = [terraform_data.echo_zip, aws_iam_role_policy.echo, aws_cloudwatch_log_group.echo]
}

################################################################################
# The WebSocket module with every option on
################################################################################

module "websocket" {
  source = "../../"

  name                  = var.name
  tags                  = local.tags
  log_level             = "debug"
  log_retention_in_days = 14
  access_logs_enabled   = var.access_logs_enabled

  authorizer = {
    mode = "jwt"
    jwt = {
      secret_arn = aws_secretsmanager_secret.jwt.arn
      issuer     = var.jwt_issuer
      audience   = var.jwt_audience
    }
  }

  routes = {
    # Handled by the built-in function: each frame becomes a websocket.message
    # lifecycle event (routeKey, body) on the bus below, with an empty reply.
    # A built-in route needs event_bus; consume it with an EventBridge rule.
    typing = {}
    # Handled by the user's function above.
    echo = {
      handler      = "lambda"
      function_arn = aws_lambda_function.echo.arn
    }
  }

  event_bus = {
    create = true
  }

  custom_domain = var.custom_domain_name == null ? null : {
    domain_name     = var.custom_domain_name
    certificate_arn = var.certificate_arn
  }

  # Sends to more than fanout_threshold connections go through the SQS queue
  # and the fan-out worker; at most 5 workers deliver at once, each at
  # 10,000 / 5 = 2,000 posts/s. messages_per_invocation is left to the module:
  # 4 messages of 250 ids per invocation, half a second of posting.
  distributed_fanout = {
    enabled         = true
    threshold       = var.fanout_threshold
    batch_size      = 250
    max_concurrency = 5
  }

  detailed_metrics_enabled = true
  tracing_enabled          = true
  cleanup_schedule_minutes = 10
}
