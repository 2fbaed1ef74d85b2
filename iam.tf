################################################################################
# IAM: one role per function, least privilege. Every action is named; the only
# resource wildcard is X-Ray's (PutTraceSegments/PutTelemetryRecords support no
# resource-level permissions), and only when tracing is on.
################################################################################

locals {
  # IAM role names are global to the account, and so are CloudFront's names
  # (Pusher mode's function and origin request policy) and CloudWatch
  # dashboards, while everything else the module names is regional: the
  # region in these names lets the same `name` be deployed in two regions of
  # one account. `<name>-<suffix>-<region>` when it fits 64 characters (IAM's
  # and CloudFront Functions' limit); otherwise the start of `<name>-<suffix>`,
  # 8 hex characters of its SHA-1 (so two long names that share a prefix still
  # differ) and the region, 64 characters in all.
  role_base_names = merge(
    { for fn in local.function_names : fn => "${var.name}-${fn}" },
    { "apigateway-logs" = "${var.name}-apigateway-logs" },
    { pusher = "${var.name}-pusher" },
  )
  global_base_names = merge(local.role_base_names, {
    "pusher-rewrite"   = "${var.name}-pusher-rewrite"
    "pusher-websocket" = "${var.name}-pusher-websocket"
    dashboard          = var.name
  })
  global_names = {
    for k, base in local.global_base_names : k => (
      length("${base}-${local.region}") <= 64 ? "${base}-${local.region}" :
      "${substr(base, 0, 64 - 10 - length(local.region))}-${substr(sha1(base), 0, 8)}-${local.region}"
    )
  }
  role_names = { for k in keys(local.role_base_names) : k => local.global_names[k] }

  table_resources = [aws_dynamodb_table.this.arn, "${aws_dynamodb_table.this.arn}/index/*"]

  # Exactly what the functions call (the methods of the DynamoAPI interfaces
  # in lambda/store and lambda/fanout; TestIAMPoliciesAreLeastPrivilege
  # compares the two): GetItem, Query, BatchGetItem and TransactWriteItems
  # (whose Put, Update, Delete and ConditionCheck items need the item-level
  # actions too), PutItem, UpdateItem and DeleteItem (the fan-out ledger).
  # No Scan: lists are Queries on the GSIs, counters are updates.
  dynamodb_actions = [
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:Query",
    "dynamodb:BatchGetItem",
    "dynamodb:TransactWriteItems",
    "dynamodb:ConditionCheckItem",
  ]

  # POST sends; DELETE disconnects, which only the publisher (its disconnect
  # command) and the Pusher function (terminate_connections, refused auth)
  # do; no function looks a connection up (GET). Only on the function's own
  # stage: this API's, or the Pusher API's (pusher.tf). Built from the API
  # (not the stage) so the functions, which the stage depends on through its
  # routes, can depend on their policies.
  manage_connections_resources = {
    for fn, m in {
      websocket = { api = aws_apigatewayv2_api.this.execution_arn, methods = ["POST"] }
      publisher = { api = aws_apigatewayv2_api.this.execution_arn, methods = ["POST", "DELETE"] }
      fanout    = { api = aws_apigatewayv2_api.this.execution_arn, methods = ["POST"] }
      pusher    = { api = try(aws_apigatewayv2_api.pusher[0].execution_arn, ""), methods = ["POST", "DELETE"] }
    } : fn => [for method in m.methods : "${m.api}/${var.stage_name}/${method}/@connections/*"]
  }

  ssm_parameter_arns = [
    for p in compact([local.jwt.secret_ssm_parameter, local.jwt.public_key_ssm_parameter]) :
    startswith(p, "arn:") ? p : "arn:${local.partition}:ssm:${local.region}:${local.account_id}:parameter/${trimprefix(p, "/")}"
  ]
  secret_arns = compact([local.jwt.secret_arn, local.jwt.public_key_secret_arn])

  # Every customer managed key is usable only through the service whose data
  # it encrypts (kms:ViaService: "<service>.<region>.<dns suffix>"), in the
  # region of that data: a function cannot decrypt or encrypt with it
  # directly.
  fanout_key_condition = { StringEquals = { "kms:ViaService" = ["sqs.${local.region}.${local.dns_suffix}"] } }
  jwt_key_services = distinct(concat(
    [for arn in local.ssm_parameter_arns : "ssm.${split(":", arn)[3]}.${local.dns_suffix}"],
    [for arn in local.secret_arns : "secretsmanager.${split(":", arn)[3]}.${local.dns_suffix}"],
  ))

  logs_statement = {
    for fn in local.function_names : fn => {
      Sid      = "WriteOwnLogs"
      Effect   = "Allow"
      Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
      Resource = ["${aws_cloudwatch_log_group.function[fn].arn}:*"]
    }
  }

  xray_statements = var.tracing_enabled ? [{
    Sid      = "WriteTraces"
    Effect   = "Allow"
    Action   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    Resource = ["*"]
  }] : []

  # Table and management API: what the websocket, publisher, fan-out worker
  # and Pusher functions share (each with its own management API methods).
  connection_statements = {
    for fn, resources in local.manage_connections_resources : fn => concat(
      [
        {
          Sid      = "ConnectionTable"
          Effect   = "Allow"
          Action   = local.dynamodb_actions
          Resource = local.table_resources
        },
        {
          Sid      = "ManageConnections"
          Effect   = "Allow"
          Action   = ["execute-api:ManageConnections"]
          Resource = resources
        },
      ],
      var.dynamodb.kms_key_arn == null ? [] : [{
        Sid      = "TableKey"
        Effect   = "Allow"
        Action   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
        Resource = [var.dynamodb.kms_key_arn]
        # Only as DynamoDB uses it for the table, never directly.
        Condition = { StringEquals = { "kms:ViaService" = ["dynamodb.${local.region}.${local.dns_suffix}"] } }
      }],
    )
  }

  # Distributed fan-out: the senders may only enqueue (SendMessageBatch is
  # authorized as sqs:SendMessage); the worker may only consume, as the event
  # source mapping's poller does with its role. With a customer key, sending
  # needs GenerateDataKey and Decrypt, receiving Decrypt.
  fanout_queue_arns = local.fanout_enabled ? [aws_sqs_queue.fanout[0].arn] : []
  # (One conditional per statement: the key's has a Condition the other lacks.)
  fanout_send_statements = concat(
    local.fanout_enabled ? [{
      Sid      = "EnqueueFanoutBatches"
      Effect   = "Allow"
      Action   = ["sqs:SendMessage"]
      Resource = local.fanout_queue_arns
    }] : [],
    local.fanout_enabled && local.fanout_kms_key_arn != null ? [{
      Sid       = "FanoutQueueKey"
      Effect    = "Allow"
      Action    = ["kms:GenerateDataKey", "kms:Decrypt"]
      Resource  = [local.fanout_kms_key_arn]
      Condition = local.fanout_key_condition
    }] : [],
  )
  fanout_worker_statements = concat(
    local.connection_statements["fanout"],
    [{
      Sid      = "ConsumeFanoutBatches"
      Effect   = "Allow"
      Action   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility"]
      Resource = local.fanout_queue_arns
    }],
    local.fanout_kms_key_arn == null ? [] : [{
      Sid       = "FanoutQueueKey"
      Effect    = "Allow"
      Action    = ["kms:Decrypt"]
      Resource  = [local.fanout_kms_key_arn]
      Condition = local.fanout_key_condition
    }],
  )

  # In Pusher mode the publisher's Cleanup announces member_removed for the
  # expired Pusher connections it removes: POST on the Pusher stage only.
  pusher_post_resources = ["${try(aws_apigatewayv2_api.pusher[0].execution_arn, "")}/${var.stage_name}/POST/@connections/*"]
  publisher_pusher_statements = local.pusher_enabled ? [{
    Sid      = "AnnouncePusherPresence"
    Effect   = "Allow"
    Action   = ["execute-api:ManageConnections"]
    Resource = local.pusher_post_resources
  }] : []
  # The fan-out worker delivers the Pusher function's batches and announces
  # member_removed for the Pusher connections it finds gone: POST on the
  # Pusher stage only.
  fanout_pusher_statements = local.pusher_enabled && local.fanout_enabled ? [{
    Sid      = "DeliverPusherBatches"
    Effect   = "Allow"
    Action   = ["execute-api:ManageConnections"]
    Resource = local.pusher_post_resources
  }] : []

  runtime_statements = {
    for fn in ["websocket", "publisher"] : fn => concat(
      local.connection_statements[fn],
      local.fanout_send_statements,
      local.events_enabled ? [{
        Sid      = "LifecycleEvents"
        Effect   = "Allow"
        Action   = ["events:PutEvents"]
        Resource = [local.event_bus_arn]
      }] : [],
    )
  }

  authorizer_statements = concat(
    length(local.ssm_parameter_arns) == 0 ? [] : [{
      Sid      = "ReadKeyParameter"
      Effect   = "Allow"
      Action   = ["ssm:GetParameter"]
      Resource = local.ssm_parameter_arns
    }],
    length(local.secret_arns) == 0 ? [] : [{
      Sid      = "ReadKeySecret"
      Effect   = "Allow"
      Action   = ["secretsmanager:GetSecretValue"]
      Resource = local.secret_arns
    }],
    # A key given with an inline key source (nothing to decrypt) adds nothing.
    local.jwt.kms_key_arn == null || length(local.jwt_key_services) == 0 ? [] : [{
      Sid       = "DecryptKey"
      Effect    = "Allow"
      Action    = ["kms:Decrypt"]
      Resource  = [local.jwt.kms_key_arn]
      Condition = { StringEquals = { "kms:ViaService" = local.jwt_key_services } }
    }],
  )

  # The deployer makes a deployment of this API and moves this stage onto it
  # (CreateDeployment with stageName: POST on the deployments, PATCH on the
  # stage), and nothing else: API Gateway Management V2's resource ARNs.
  api_management_arn = "arn:${local.partition}:apigateway:${local.region}::/apis/${aws_apigatewayv2_api.this.id}"
  deployer_statements = [
    {
      Sid      = "CreateDeployment"
      Effect   = "Allow"
      Action   = ["apigateway:POST"]
      Resource = ["${local.api_management_arn}/deployments"]
    },
    {
      Sid      = "MoveStage"
      Effect   = "Allow"
      Action   = ["apigateway:PATCH"]
      Resource = ["${local.api_management_arn}/stages/${var.stage_name}"]
    },
  ]

  function_statements = {
    websocket  = local.runtime_statements["websocket"]
    publisher  = concat(local.runtime_statements["publisher"], local.publisher_pusher_statements)
    authorizer = local.authorizer_statements
    fanout     = concat(local.fanout_worker_statements, local.fanout_pusher_statements)
    deployer   = local.deployer_statements
  }
}

resource "aws_iam_role" "function" {
  for_each = toset(local.function_names)

  name        = local.role_names[each.key]
  description = "Runs the ${var.name}-${each.key} Lambda function in ${local.region}"
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

#tfsec:ignore:aws-iam-no-policy-wildcards The only wildcards are "<log group>:*" (the function's own log streams), "<table>/index/*" (this table's GSIs), "@connections/*" on this stage, and X-Ray's required resource "*" when tracing is on. Queue permissions name the fan-out queue only.
resource "aws_iam_role_policy" "function" {
  for_each = toset(local.function_names)

  name = "${var.name}-${each.key}"
  role = aws_iam_role.function[each.key].id
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = concat([local.logs_statement[each.key]], local.function_statements[each.key], local.xray_statements)
  })
}
