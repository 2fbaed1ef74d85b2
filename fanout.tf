################################################################################
# Distributed fan-out: above a threshold, the websocket and publisher functions
# enqueue the recipients in batches; the fan-out worker delivers each batch.
################################################################################

locals {
  fanout_kms_key_arn = var.distributed_fanout.kms_key_arn

  # AWS's guidance for Lambda consumers: at least six times the function
  # timeout, so a batch is not handed to a second worker while the first one
  # (and its retries of throttled posts) is still delivering it.
  fanout_visibility_timeout = 6 * var.lambda_timeout.fanout

  # Queue messages per worker invocation when messages_per_invocation is not
  # set: about half a second of posting at a worker's share of the budget
  # (rate_budget / max_concurrency; 10,000/s split the same way when
  # rate_budget is 0), from 1 to 10, so the tail of each invocation (the
  # latency of its last posts) costs a few percent of the share: 1 with the
  # defaults, 5 with max_concurrency = 2. The same as
  # fanout.Settings.MessagesPerInvocation in lambda/fanout.
  fanout_budget = var.distributed_fanout.rate_budget > 0 ? var.distributed_fanout.rate_budget : 10000
  fanout_messages_per_invocation = coalesce(
    var.distributed_fanout.messages_per_invocation,
    min(10, max(1, ceil(local.fanout_budget * 0.5 / (var.distributed_fanout.max_concurrency * var.distributed_fanout.batch_size)))),
  )
}

# Holds batches that failed max_receive_count deliveries, for inspection and
# redrive; kept longer than the queue (a standard queue keeps a message's
# original enqueue time when it moves here).
#tfsec:ignore:aws-sqs-queue-encryption-use-cmk Encrypted with SQS managed keys (SSE-SQS) unless distributed_fanout.kms_key_arn names a customer key.
resource "aws_sqs_queue" "fanout_dlq" {
  count = local.fanout_enabled ? 1 : 0

  name                              = "${var.name}-fanout-dlq"
  message_retention_seconds         = 1209600
  sqs_managed_sse_enabled           = local.fanout_kms_key_arn == null ? true : null
  kms_master_key_id                 = local.fanout_kms_key_arn
  kms_data_key_reuse_period_seconds = local.fanout_kms_key_arn == null ? null : 300
  tags                              = var.tags
}

#tfsec:ignore:aws-sqs-queue-encryption-use-cmk Encrypted with SQS managed keys (SSE-SQS) unless distributed_fanout.kms_key_arn names a customer key.
resource "aws_sqs_queue" "fanout" {
  count = local.fanout_enabled ? 1 : 0

  name                              = "${var.name}-fanout"
  visibility_timeout_seconds        = local.fanout_visibility_timeout
  message_retention_seconds         = var.distributed_fanout.message_retention_seconds
  sqs_managed_sse_enabled           = local.fanout_kms_key_arn == null ? true : null
  kms_master_key_id                 = local.fanout_kms_key_arn
  kms_data_key_reuse_period_seconds = local.fanout_kms_key_arn == null ? null : 300
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.fanout_dlq[0].arn
    maxReceiveCount     = var.distributed_fanout.max_receive_count
  })
  tags = var.tags

  lifecycle {
    # A failed batch is received again every visibility timeout; SQS deletes
    # it when its retention ends, also before it reached the dead-letter
    # queue, where nothing would show it was never delivered.
    precondition {
      condition     = var.distributed_fanout.max_receive_count * local.fanout_visibility_timeout < var.distributed_fanout.message_retention_seconds
      error_message = "The distributed_fanout.message_retention_seconds must exceed max_receive_count x the queue's visibility timeout (6 x lambda_timeout.fanout): a batch that keeps failing would otherwise be deleted at the end of its retention before it reaches the dead-letter queue, and nobody would know its recipients never got it. Raise message_retention_seconds, or lower max_receive_count or lambda_timeout.fanout."
    }
  }
}

# Only the fan-out queue may use the dead-letter queue.
resource "aws_sqs_queue_redrive_allow_policy" "fanout_dlq" {
  count = local.fanout_enabled ? 1 : 0

  queue_url = aws_sqs_queue.fanout_dlq[0].id
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.fanout[0].arn]
  })
}

# Lambda polls the queue with the worker's role. ReportBatchItemFailures: a
# failed batch is retried alone, the others of the invocation are deleted.
# maximum_concurrency caps the workers of all distributed sends together,
# hence the share of API Gateway's account-wide @connections budget they use.
resource "aws_lambda_event_source_mapping" "fanout" {
  count = local.fanout_enabled ? 1 : 0

  event_source_arn        = aws_sqs_queue.fanout[0].arn
  function_name           = aws_lambda_function.this["fanout"].arn
  batch_size              = local.fanout_messages_per_invocation
  function_response_types = ["ReportBatchItemFailures"]

  scaling_config {
    maximum_concurrency = var.distributed_fanout.max_concurrency
  }
}
