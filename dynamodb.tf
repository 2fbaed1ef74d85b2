################################################################################
# DynamoDB: one table for connections, channel memberships and counters
# (data model in docs/data-model.md; the Go store relies on these names).
################################################################################

locals {
  provisioned = var.dynamodb.billing_mode == "PROVISIONED"

  # GSI name => [hash key, range key]; each projects the keys plus `ttl`, which
  # every read uses to drop items DynamoDB has not deleted yet.
  table_indexes = {
    "channel-index" = ["gsi1pk", "gsi1sk"]
    "user-index"    = ["gsi2pk", "gsi2sk"]
    "shard-index"   = ["gsi3pk", "gsi3sk"]
  }
}

resource "aws_dynamodb_table" "this" {
  name                        = var.name
  billing_mode                = var.dynamodb.billing_mode
  read_capacity               = local.provisioned ? var.dynamodb.read_capacity : null
  write_capacity              = local.provisioned ? var.dynamodb.write_capacity : null
  hash_key                    = "pk"
  range_key                   = "sk"
  deletion_protection_enabled = var.dynamodb.deletion_protection

  dynamic "attribute" {
    for_each = toset(concat(["pk", "sk"], flatten(values(local.table_indexes))))
    content {
      name = attribute.value
      type = "S"
    }
  }

  dynamic "global_secondary_index" {
    for_each = local.table_indexes
    content {
      name               = global_secondary_index.key
      hash_key           = global_secondary_index.value[0]
      range_key          = global_secondary_index.value[1]
      projection_type    = "INCLUDE"
      non_key_attributes = ["ttl"]
      read_capacity      = local.provisioned ? var.dynamodb.read_capacity : null
      write_capacity     = local.provisioned ? var.dynamodb.write_capacity : null
    }
  }

  ttl {
    attribute_name = "ttl"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = var.dynamodb.point_in_time_recovery
  }

  # Encrypted with KMS: the customer managed key when given, else aws/dynamodb.
  #tfsec:ignore:aws-dynamodb-table-customer-key A customer managed key is optional (var.dynamodb.kms_key_arn); the default AWS managed key avoids a key policy to maintain.
  server_side_encryption {
    enabled     = true
    kms_key_arn = var.dynamodb.kms_key_arn
  }

  tags = var.tags
}
