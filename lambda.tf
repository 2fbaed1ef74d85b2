################################################################################
# Lambda packages: given, bundled with a release, or built from source
################################################################################

locals {
  # Where the zips come from, in this order: lambda_artifacts when given; the
  # zips bundled in a release tree (dist/) when its manifest was built from
  # exactly these sources; otherwise a build from lambda/ with Go at apply.
  artifacts_given = length(var.lambda_artifacts) > 0
  build_enabled   = !local.artifacts_given && !local.bundle_usable
  artifact_source = local.artifacts_given ? "lambda_artifacts" : (local.bundle_usable ? "bundled" : "build")
  go_arch         = var.lambda_architecture == "arm64" ? "arm64" : "amd64"
  build_dir       = coalesce(var.build_dir, "${path.root}/.terraform/websocket-lambdas/${var.name}")

  # Content hash of everything that goes into a bootstrap binary: the Go
  # sources of the Lambda packages, the module's go.mod/go.sum and the
  # packager. Not hashed: tests, testdata, and the packages the functions never
  # import (lambda/localgw is the local gateway, lambda/mgmtapitest a test
  # fake), so edits there redeploy nothing. File contents only, never
  # timestamps, so a fresh clone plans no change. The release manifest holds
  # the same hash, computed by tools/package (SourceHash): sha256 over the
  # lines "<path>:<sha256 of the file>", sorted by path, joined by "\n".
  source_files = sort(concat(
    [
      for f in fileset(path.module, "lambda/**/*.go") : f
      if !endswith(f, "_test.go") && !startswith(f, "lambda/localgw/") && !startswith(f, "lambda/mgmtapitest/") && !strcontains(f, "/testdata/")
    ],
    [for f in fileset(path.module, "tools/package/*.go") : f if !endswith(f, "_test.go")],
    ["go.mod", "go.sum"],
  ))
  source_hash = sha256(join("\n", [for f in local.source_files : "${f}:${filesha256("${path.module}/${f}")}"]))

  # A release tree (the vX.Y.Z-bundled tag) carries dist/manifest.json and
  # dist/<arch>/<fn>.zip. They are used only when the manifest was built from
  # these very sources and every zip this configuration needs is there with
  # the sha256 the manifest gives; anything else (no manifest, edited sources,
  # a missing or different zip) falls back to the build.
  bundle_manifest_exists = fileexists("${path.module}/dist/manifest.json")
  bundle_manifest        = try(jsondecode(file("${path.module}/dist/manifest.json")), null)
  bundle_dir             = "${path.module}/dist/${var.lambda_architecture}"
  bundle_matches         = try(local.bundle_manifest.source_hash == local.source_hash, false)
  # The functions whose bundled zip is missing or not the manifest's.
  bundle_bad_zips = [
    for fn in local.function_names : fn if !try(filesha256("${local.bundle_dir}/${fn}.zip") == local.bundle_manifest.zips[var.lambda_architecture][fn], false)
  ]
  bundle_usable = var.use_bundled_artifacts && local.bundle_matches && length(local.bundle_bad_zips) == 0

  # Whether go_command can run, known at plan: a path is checked directly (a
  # relative one from the module folder, where the build runs); a bare name
  # is looked up in the PATH of this Terraform process, which only Linux
  # exposes (/proc/self/environ; only PATH is read from it). Elsewhere a bare
  # name counts as present and a missing Go stops the build at apply instead.
  go_command_is_path = strcontains(var.go_command, "/")
  # Read as ISO-8859-1, which decodes any byte: file() refuses a file that
  # is not UTF-8, and one such byte anywhere in the environment would turn
  # the check off.
  go_search_path = local.go_command_is_path ? null : try(regex("(?:^|\\x00)PATH=([^\\x00]*)", textdecodebase64(filebase64("/proc/self/environ"), "ISO-8859-1"))[0], null)
  go_available = (
    local.go_command_is_path ? try(fileexists(startswith(var.go_command, "/") ? var.go_command : "${path.module}/${var.go_command}"), false) :
    local.go_search_path == null ? true :
    anytrue([for d in split(":", local.go_search_path) : try(fileexists("${d == "" ? "." : d}/${var.go_command}"), false)])
  )
  go_missing_reason = local.go_command_is_path ? "go_command \"${var.go_command}\" does not exist" : "\"${var.go_command}\" (go_command) is not on PATH"
  bundle_state = (
    !local.bundle_manifest_exists ? "this copy of the module has no bundled zips (dist/manifest.json): it is a source tree, such as a vX.Y.Z tag or a branch" :
    local.bundle_manifest == null ? "dist/manifest.json cannot be read (not the JSON a release writes): this copy's bundle is damaged; download the vX.Y.Z-bundled tag again" :
    !local.bundle_matches ? "dist/manifest.json was built from other sources (source hash ${try(local.bundle_manifest.source_hash, "unreadable")}, these sources hash to ${local.source_hash})" :
    !var.use_bundled_artifacts ? "use_bundled_artifacts is false" :
    !can(local.bundle_manifest.zips[var.lambda_architecture]) ? "dist/manifest.json has no zips for lambda_architecture ${var.lambda_architecture}" :
    "dist/${var.lambda_architecture}/ lacks a zip of ${join(", ", local.bundle_bad_zips)} with the sha256 of dist/manifest.json (missing or damaged: download the vX.Y.Z-bundled tag again)"
  )

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
  # exactly when a rebuild would change the binary). Prebuilt and bundled zips
  # exist at plan time and are hashed for real.
  packages = {
    for fn in local.function_names : fn => {
      filename = (
        local.artifacts_given ? lookup(var.lambda_artifacts, fn, null) :
        local.bundle_usable ? "${local.bundle_dir}/${fn}.zip" :
        "${local.build_dir}/${fn}.zip"
      )
      source_code_hash = (
        local.artifacts_given ? try(filebase64sha256(var.lambda_artifacts[fn]), null) :
        local.bundle_usable ? filebase64sha256("${local.bundle_dir}/${fn}.zip") :
        base64sha256("${local.source_hash}:${local.go_arch}:${fn}")
      )
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

  lifecycle {
    # fileset() reads its path as a pattern too: a module folder whose path
    # holds [, ], {, }, * or ? matches no file, and the source hash would
    # cover go.mod alone (no bundle matches, no edit rebuilds).
    precondition {
      condition     = length([for f in local.source_files : f if startswith(f, "lambda/")]) > 0
      error_message = "Terraform finds no Go sources under ${path.module}/lambda: the module's path holds a character fileset() reads as a pattern ([, ], {, }, * or ?). Put the module in a folder whose path has none of them."
    }
    precondition {
      condition     = local.go_available
      error_message = "Cannot build the Lambda functions: ${local.go_missing_reason}, and ${local.bundle_state}. Do one of: (1) deploy a bundled release, which needs no Go: pin the module source to a vX.Y.Z-bundled tag (\"github.com/wsforge/terraform-aws-websocket?ref=vX.Y.Z-bundled&depth=1\"), whose dist/ holds zips built from exactly its sources; (2) set lambda_artifacts to the zips of a release (<function>-${var.lambda_architecture}.zip, checked against its SHA256SUMS); (3) install Go (the version in the module's go.mod) on PATH, or set go_command to its path, and the module builds from lambda/ at apply. See docs/module.md#artifacts."
    }
  }

  provisioner "local-exec" {
    working_dir = path.module
    # go_command and the output folder reach the shell as variables, quoted,
    # so a path with spaces or quotes in it is one word.
    command = "command -v \"$GO\" >/dev/null 2>&1 || { echo \"go_command \\\"$GO\\\" not found: install Go, set go_command, or deploy a vX.Y.Z-bundled release (docs/module.md#artifacts)\" >&2; exit 127; }; \"$GO\" run ./tools/package -out \"$OUT\" -arch ${local.go_arch} ${join(" ", local.function_names)}"
    environment = {
      CGO_ENABLED = "0"
      GOFLAGS     = "-buildvcs=false"
      # A go.work above the module (a monorepo) would leave tools/package
      # outside the workspace: the packager runs in this module alone.
      GOWORK = "off"
      # The packager compiles with this binary too.
      GO  = var.go_command
      OUT = local.build_output_dir
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

  # Sends above the threshold are enqueued in batches for the fan-out
  # worker: the websocket and publisher functions, and the Pusher function
  # (pusher.tf), whose batches carry the Pusher stage's endpoint.
  fanout_send_environment = local.fanout_enabled ? {
    WS_FANOUT_QUEUE_URL  = aws_sqs_queue.fanout[0].url
    WS_FANOUT_THRESHOLD  = tostring(var.distributed_fanout.threshold)
    WS_FANOUT_BATCH_SIZE = tostring(var.distributed_fanout.batch_size)
    # The rate hint in every batch: rate_budget / max_concurrency.
    WS_FANOUT_RATE_BUDGET     = tostring(var.distributed_fanout.rate_budget)
    WS_FANOUT_MAX_CONCURRENCY = tostring(var.distributed_fanout.max_concurrency)
  } : {}

  runtime_environment = merge(
    local.sender_environment,
    local.events_enabled ? {
      WS_EVENT_BUS_NAME = local.event_bus_name
      WS_EVENT_SOURCE   = var.event_bus.source
    } : {},
    local.fanout_send_environment,
    # Channel history: both functions publish to channels.
    length(var.history) > 0 ? {
      WS_HISTORY = jsonencode([for r in var.history : { pattern = r.pattern, size = r.size, ttl = r.ttl }])
    } : {},
  )

  # The fan-out worker delivers batches: table (gone connections, idempotency
  # records) and management API, but no queue URL (it never enqueues) and no
  # lifecycle events. In Pusher mode it also delivers the Pusher function's
  # batches (each names its endpoint) and announces member_removed for the
  # Pusher connections it finds gone, through the Pusher stage.
  fanout_environment = merge(
    local.sender_environment,
    local.pusher_enabled ? { WS_PUSHER_MANAGEMENT_ENDPOINT = local.pusher_management_url } : {},
  )

  jwt = var.authorizer.jwt
  authorizer_environment = merge(
    {
      WS_TABLE_NAME         = aws_dynamodb_table.this.name
      WS_LOG_LEVEL          = var.log_level
      WS_JWT_USER_CLAIM     = local.jwt.user_claim
      WS_JWT_CHANNELS_CLAIM = local.jwt.channels_claim
      WS_JWT_LEEWAY         = "${local.jwt.leeway_seconds}s"
      # API Gateway checks that every identity source is present; the token is
      # verified from the first one (query string or header).
      WS_JWT_IDENTITY_SOURCE = var.authorizer.identity_sources[0]
    },
    { for k, v in {
      WS_JWT_SECRET_SSM_PARAMETER     = local.jwt.secret_ssm_parameter
      WS_JWT_SECRET_ARN               = local.jwt.secret_arn
      WS_JWT_PUBLIC_KEY               = local.jwt.public_key
      WS_JWT_PUBLIC_KEY_SSM_PARAMETER = local.jwt.public_key_ssm_parameter
      WS_JWT_PUBLIC_KEY_SECRET_ARN    = local.jwt.public_key_secret_arn
      WS_JWT_JWKS_URL                 = local.jwt.jwks_url
      WS_JWT_ISSUER                   = local.jwt.issuer
      WS_JWT_AUDIENCE                 = local.jwt.audience
      WS_JWT_TOKEN_USE                = local.jwt.token_use
    } : k => v if v != null },
    var.authorizer_jwt_secret == null ? {} : { WS_JWT_SECRET = var.authorizer_jwt_secret },
  )

  # Fan-out is CPU-bound in the HTTP client, and a lighter GC is worth about
  # 10% of its throughput (docs/benchmarks.md); GOMEMLIMIT keeps the heap
  # under the function's memory, so the GC tightens before Lambda runs out.
  # Lambda shows a function at least 2 vCPUs but gives it CPU in proportion
  # to memory (1,769 MB is one vCPU): GOMAXPROCS follows the CPU it gets, not
  # the vCPUs it sees, which cuts a post's CPU by about a fifth
  # (docs/benchmarks.md, "CPU per post").
  go_gc_environment = { for fn in local.function_names : fn => local.go_runtime_environment[local.function_memory[fn]] }
  go_runtime_environment = { for mb in distinct(concat(values(local.function_memory), [var.pusher.memory_size])) : mb => {
    GOGC       = "400"
    GOMEMLIMIT = "${floor(mb * 0.8)}MiB"
    GOMAXPROCS = tostring(max(1, floor(mb / 1769)))
  } }

  function_environment = {
    websocket = merge(
      local.runtime_environment,
      local.go_gc_environment["websocket"],
      { WS_MAX_CHANNELS_PER_CONNECTION = tostring(var.max_channels_per_connection) },
    )
    # The publisher's join command honours the same cap. Its scheduled
    # Cleanup also removes expired Pusher connections (same table) and
    # announces member_removed through the Pusher stage (docs/pusher.md).
    publisher = merge(
      local.runtime_environment,
      local.go_gc_environment["publisher"],
      { WS_MAX_CHANNELS_PER_CONNECTION = tostring(var.max_channels_per_connection) },
      local.pusher_enabled ? { WS_PUSHER_MANAGEMENT_ENDPOINT = local.pusher_management_url } : {},
    )
    authorizer = local.authorizer_environment
    fanout     = merge(local.fanout_environment, try(local.go_gc_environment["fanout"], {}))
    # The API and stage it redeploys (api.tf, terraform_data.route_set).
    deployer = {
      WS_API_ID     = aws_apigatewayv2_api.this.id
      WS_STAGE_NAME = var.stage_name
      WS_LOG_LEVEL  = var.log_level
    }
  }

  # Key sources of the JWT authorizer: exactly one must be set in mode jwt.
  jwt_key_source_count = length([for v in [
    local.jwt.secret_ssm_parameter, local.jwt.secret_arn, local.jwt.public_key,
    local.jwt.public_key_ssm_parameter, local.jwt.public_key_secret_arn, local.jwt.jwks_url,
  ] : v if v != null]) + (var.authorizer_jwt_secret == null ? 0 : 1)

  # The JWT settings given outside mode jwt, which nothing would read: a
  # configuration with a key and mode none would let anyone connect while
  # its author believes tokens are checked.
  jwt_settings_unused = local.jwt_enabled ? [] : concat(
    [for k in ["secret_ssm_parameter", "secret_arn", "public_key", "public_key_ssm_parameter", "public_key_secret_arn", "jwks_url", "kms_key_arn", "issuer", "audience", "token_use"] : "authorizer.jwt.${k}" if local.jwt[k] != null],
    local.jwt.user_claim != "sub" ? ["authorizer.jwt.user_claim"] : [],
    local.jwt.channels_claim != "channels" ? ["authorizer.jwt.channels_claim"] : [],
    local.jwt.leeway_seconds != 5 ? ["authorizer.jwt.leeway_seconds"] : [],
    nonsensitive(var.authorizer_jwt_secret == null) ? [] : ["authorizer_jwt_secret"],
  )

  # Lambda refuses a function whose environment variables (names and values)
  # add up to more than 4 KB.
  environment_bytes = {
    for fn in local.function_names : fn => sum(concat([0], [for k, v in merge(local.function_environment[fn], local.metrics_environment) : length(k) + length(v)]))
  }
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
      error_message = "The lambda_artifacts map has no \"${each.key}\" zip. Give websocket, publisher, deployer, authorizer (with authorizer mode jwt) and fanout (with distributed_fanout enabled), or leave lambda_artifacts empty to use the bundled zips or build from source."
    }
    precondition {
      condition     = !local.artifacts_given || local.packages[each.key].source_code_hash != null
      error_message = "The lambda_artifacts zip of ${each.key} (${coalesce(local.packages[each.key].filename, "unset")}) cannot be read; build it first (make package) or fix the path."
    }
    precondition {
      condition     = length(local.jwt_settings_unused) == 0
      error_message = "The JWT settings ${join(", ", local.jwt_settings_unused)} are only read in authorizer mode \"jwt\", and the mode is \"${var.authorizer.mode}\": with mode none anyone may connect, with mode lambda your function decides. Set authorizer.mode = \"jwt\" to verify tokens with them, or remove them."
    }
    precondition {
      condition     = !local.jwt_enabled || local.jwt_key_source_count == 1
      error_message = "The authorizer mode jwt needs exactly one key source: one of authorizer.jwt.secret_ssm_parameter, secret_arn, public_key, public_key_ssm_parameter, public_key_secret_arn, jwks_url, or the authorizer_jwt_secret variable."
    }
    # SSM parameters and Secrets Manager secrets are regional: the
    # authorizer's clients, in its own region, cannot read another
    # region's, and a KMS key decrypts only in its own region.
    precondition {
      condition     = each.key != "authorizer" || alltrue([for arn in concat(local.ssm_parameter_arns, local.secret_arns, compact([local.jwt.kms_key_arn])) : split(":", arn)[3] == local.region])
      error_message = "An authorizer.jwt parameter, secret or KMS key ARN names another region than the module's (${local.region}): the authorizer reads the key with its own region's SSM or Secrets Manager client, which cannot reach another region's parameter or secret, and a KMS key decrypts only in its own region. Copy or replicate it into ${local.region}."
    }
    precondition {
      condition     = local.environment_bytes[each.key] <= 4096
      error_message = "The environment of the ${each.key} function is larger than Lambda's 4 KB (4096 bytes) limit for all environment variables together (names and values).${each.key == "authorizer" ? " An inline key (authorizer.jwt.public_key or authorizer_jwt_secret) is the usual cause: store it in an SSM SecureString parameter (authorizer.jwt.public_key_ssm_parameter / secret_ssm_parameter) or in Secrets Manager (public_key_secret_arn / secret_arn), or use the issuer's JWKS endpoint (authorizer.jwt.jwks_url)." : ""}"
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
