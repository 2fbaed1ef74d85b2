################################################################################
# Lambda packages: built from this module's Go sources at apply time, or given
################################################################################

locals {
  build_enabled = length(var.lambda_artifacts) == 0
  go_arch       = var.lambda_architecture == "arm64" ? "arm64" : "amd64"
  build_dir     = coalesce(var.build_dir, "${path.root}/.terraform/websocket-lambdas/${var.name}")

  # Content hash of everything that goes into a bootstrap binary: the Go
  # sources of the Lambda packages, the module's go.mod/go.sum and the
  # packager. Not hashed: tests, testdata, and the packages the functions never
  # import (lambda/localgw is the local gateway, lambda/mgmtapitest a test
  # fake), so edits there redeploy nothing. File contents only, never
  # timestamps, so a fresh clone plans no change.
  source_files = sort(concat(
    [
      for f in fileset(path.module, "lambda/**/*.go") : f
      if !endswith(f, "_test.go") && !startswith(f, "lambda/localgw/") && !startswith(f, "lambda/mgmtapitest/") && !strcontains(f, "/testdata/")
    ],
    [for f in fileset(path.module, "tools/package/*.go") : f if !endswith(f, "_test.go")],
    ["go.mod", "go.sum"],
  ))
  source_hash = sha256(join("\n", [for f in local.source_files : "${f}:${filesha256("${path.module}/${f}")}"]))

  # Absolute output folder of the build, and whether every zip is there. A
  # changed folder (name or build_dir) or a missing zip (a clean CI workspace,
  # a deleted .terraform) reruns the build. While a zip is missing the trigger
  # is unknown at plan time (timestamp() is), which forces the replacement;
  # at apply it resolves to "present", the value a later plan computes once
  # the zips exist, so the plan after a build is empty.
  build_output_dir = abspath(local.build_dir)
  build_zips_present = alltrue([
    for fn in local.function_names : fileexists("${local.build_output_dir}/${fn}.zip")
  ])
  build_zips_trigger = local.build_zips_present ? "present" : (timestamp() == "" ? "missing" : "present")

  # The zip does not exist at plan time when it is built here, so its
  # source_code_hash is derived from the source hash (known at plan, changes
  # exactly when a rebuild would change the binary). Prebuilt zips exist at plan
  # time and are hashed for real.
  packages = {
    for fn in local.function_names : fn => {
      filename         = local.build_enabled ? "${local.build_dir}/${fn}.zip" : lookup(var.lambda_artifacts, fn, null)
      source_code_hash = local.build_enabled ? base64sha256("${local.source_hash}:${local.go_arch}:${fn}") : try(filebase64sha256(var.lambda_artifacts[fn]), null)
    }
  }
}

# Builds <build_dir>/<fn>.zip (only `bootstrap`, reproducible) with the Go
# toolchain. Provisioners run at apply only: `plan` never compiles anything.
# Reruns when the sources, architecture, function list or output folder
# change, or when a zip is missing.
resource "terraform_data" "build" {
  count = local.build_enabled ? 1 : 0

  triggers_replace = {
    source_hash = local.source_hash
    arch        = local.go_arch
    functions   = join(",", local.function_names)
    output_dir  = local.build_output_dir
    zips        = local.build_zips_trigger
  }

  provisioner "local-exec" {
    working_dir = path.module
    command     = "${var.go_command} run ./tools/package -out '${local.build_output_dir}' -arch ${local.go_arch} ${join(" ", local.function_names)}"
    environment = {
      CGO_ENABLED = "0"
      GOFLAGS     = "-buildvcs=false"
      # The packager compiles with this binary too.
      GO = var.go_command
    }
  }
}

################################################################################
# Lambda functions
################################################################################

locals {
  function_memory  = { for fn in local.function_names : fn => var.lambda_memory_size[fn] }
  function_timeout = { for fn in local.function_names : fn => var.lambda_timeout[fn] }

  # What every sending function (websocket, publisher, fanout) reads.
  sender_environment = {
    WS_TABLE_NAME          = aws_dynamodb_table.this.name
    WS_LOG_LEVEL           = var.log_level
    WS_MANAGEMENT_ENDPOINT = local.management_endpoint
    WS_SEND_CONCURRENCY    = tostring(var.send_concurrency)
    WS_CONNECTION_TTL      = var.connection_ttl
    WS_MAX_SEND_RATE       = tostring(var.max_send_rate)
  }

  runtime_environment = merge(
    local.sender_environment,
    local.events_enabled ? {
      WS_EVENT_BUS_NAME = local.event_bus_name
      WS_EVENT_SOURCE   = var.event_bus.source
    } : {},
    # Sends above the threshold are enqueued in batches for the fan-out worker.
    local.fanout_enabled ? {
      WS_FANOUT_QUEUE_URL  = aws_sqs_queue.fanout[0].url
      WS_FANOUT_THRESHOLD  = tostring(var.distributed_fanout.threshold)
      WS_FANOUT_BATCH_SIZE = tostring(var.distributed_fanout.batch_size)
    } : {},
  )

  # The fan-out worker delivers batches: table (gone connections, idempotency
  # records) and management API, but no queue URL (it never enqueues) and no
  # lifecycle events.
  fanout_environment = local.sender_environment

  jwt = var.authorizer.jwt
  authorizer_environment = merge(
    {
      WS_TABLE_NAME         = aws_dynamodb_table.this.name
      WS_LOG_LEVEL          = var.log_level
      WS_JWT_USER_CLAIM     = local.jwt.user_claim
      WS_JWT_CHANNELS_CLAIM = local.jwt.channels_claim
    },
    { for k, v in {
      WS_JWT_SECRET_SSM_PARAMETER     = local.jwt.secret_ssm_parameter
      WS_JWT_SECRET_ARN               = local.jwt.secret_arn
      WS_JWT_PUBLIC_KEY               = local.jwt.public_key
      WS_JWT_PUBLIC_KEY_SSM_PARAMETER = local.jwt.public_key_ssm_parameter
      WS_JWT_PUBLIC_KEY_SECRET_ARN    = local.jwt.public_key_secret_arn
      WS_JWT_ISSUER                   = local.jwt.issuer
      WS_JWT_AUDIENCE                 = local.jwt.audience
    } : k => v if v != null },
    var.authorizer_jwt_secret == null ? {} : { WS_JWT_SECRET = var.authorizer_jwt_secret },
  )

  # Fan-out is CPU-bound in the HTTP client, and a lighter GC is worth about
  # 10% of its throughput (docs/benchmarks.md); GOMEMLIMIT keeps the heap
  # under the function's memory, so the GC tightens before Lambda runs out.
  go_gc_environment = { for fn in local.function_names : fn => {
    GOGC       = "400"
    GOMEMLIMIT = "${floor(local.function_memory[fn] * 0.8)}MiB"
  } }

  function_environment = {
    websocket  = merge(local.runtime_environment, local.go_gc_environment["websocket"])
    publisher  = merge(local.runtime_environment, local.go_gc_environment["publisher"])
    authorizer = local.authorizer_environment
    fanout     = merge(local.fanout_environment, try(local.go_gc_environment["fanout"], {}))
  }

  # Key sources of the JWT authorizer: exactly one must be set in mode jwt.
  jwt_key_source_count = length([for v in [
    local.jwt.secret_ssm_parameter, local.jwt.secret_arn, local.jwt.public_key,
    local.jwt.public_key_ssm_parameter, local.jwt.public_key_secret_arn,
  ] : v if v != null]) + (var.authorizer_jwt_secret == null ? 0 : 1)
}

resource "aws_cloudwatch_log_group" "function" {
  for_each = toset(local.function_names)

  name              = "/aws/lambda/${var.name}-${each.key}"
  retention_in_days = var.log_retention_in_days
  kms_key_id        = var.cloudwatch_logs_kms_key_arn
  tags              = var.tags
}

#tfsec:ignore:aws-lambda-enable-tracing X-Ray tracing is opt-in (var.tracing_enabled): it adds cost and needs the xray:* actions on resource "*".
resource "aws_lambda_function" "this" {
  for_each = toset(local.function_names)

  function_name    = "${var.name}-${each.key}"
  description      = "WebSocket ${each.key} function of ${var.name}"
  role             = aws_iam_role.function[each.key].arn
  runtime          = "provided.al2023"
  handler          = "bootstrap"
  architectures    = [var.lambda_architecture]
  memory_size      = local.function_memory[each.key]
  timeout          = local.function_timeout[each.key]
  filename         = local.packages[each.key].filename
  source_code_hash = local.packages[each.key].source_code_hash

  environment {
    variables = merge(local.function_environment[each.key], local.metrics_environment)
  }

  tracing_config {
    mode = var.tracing_enabled ? "Active" : "PassThrough"
  }

  tags = var.tags

  # The log group and policy exist before the first invocation, so the function
  # never creates an unmanaged log group of its own.
  depends_on = [
    terraform_data.build,
    aws_cloudwatch_log_group.function,
    aws_iam_role_policy.function,
  ]

  lifecycle {
    precondition {
      condition     = local.packages[each.key].filename != null
      error_message = "The lambda_artifacts map has no \"${each.key}\" zip. Give websocket, publisher, authorizer (with authorizer mode jwt) and fanout (with distributed_fanout enabled), or leave lambda_artifacts empty to build from source."
    }
    precondition {
      condition     = local.build_enabled || local.packages[each.key].source_code_hash != null
      error_message = "The lambda_artifacts zip of ${each.key} (${coalesce(local.packages[each.key].filename, "unset")}) cannot be read; build it first (make package) or fix the path."
    }
    precondition {
      condition     = !local.jwt_enabled || local.jwt_key_source_count == 1
      error_message = "The authorizer mode jwt needs exactly one key source: one of authorizer.jwt.secret_ssm_parameter, secret_arn, public_key, public_key_ssm_parameter, public_key_secret_arn, or the authorizer_jwt_secret variable."
    }
  }
}

################################################################################
# Cleanup schedule: the publisher removes stale connections every N minutes
################################################################################

resource "aws_cloudwatch_event_rule" "cleanup" {
  count = local.cleanup_enabled ? 1 : 0

  name                = "${var.name}-cleanup"
  description         = "Invokes ${var.name}-publisher with {\"action\":\"cleanup\"}"
  schedule_expression = var.cleanup_schedule_minutes == 1 ? "rate(1 minute)" : "rate(${var.cleanup_schedule_minutes} minutes)"
  tags                = var.tags
}

resource "aws_cloudwatch_event_target" "cleanup" {
  count = local.cleanup_enabled ? 1 : 0

  rule  = aws_cloudwatch_event_rule.cleanup[0].name
  arn   = aws_lambda_function.this["publisher"].arn
  input = jsonencode({ action = "cleanup" })
}

resource "aws_lambda_permission" "cleanup" {
  count = local.cleanup_enabled ? 1 : 0

  statement_id  = "AllowCleanupSchedule"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this["publisher"].function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.cleanup[0].arn
}
