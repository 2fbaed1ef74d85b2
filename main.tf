################################################################################
# Shared values
################################################################################

data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  # `id` is the region name on every provider version (`name` is deprecated in v6).
  region     = data.aws_region.current.id
  partition  = data.aws_partition.current.partition
  account_id = data.aws_caller_identity.current.account_id

  jwt_enabled        = var.authorizer.mode == "jwt"
  authorizer_enabled = var.authorizer.mode != "none"
  events_enabled     = var.event_bus != null
  cleanup_enabled    = var.cleanup_schedule_minutes > 0
  fanout_enabled     = var.distributed_fanout.enabled

  # Functions this configuration deploys; the authorizer only in mode jwt, the
  # fan-out worker only with distributed fan-out.
  function_names = concat(["websocket", "publisher"], local.jwt_enabled ? ["authorizer"] : [], local.fanout_enabled ? ["fanout"] : [])

  # Endpoints. With a custom domain, clients and the management API go through
  # the domain and its API mapping path; otherwise through the stage URL.
  mapping_path        = try(var.custom_domain.api_mapping_key, null) == null ? "" : "/${var.custom_domain.api_mapping_key}"
  default_https_base  = "${replace(aws_apigatewayv2_api.this.api_endpoint, "wss://", "https://")}/${var.stage_name}"
  management_endpoint = var.custom_domain == null ? local.default_https_base : "https://${var.custom_domain.domain_name}${local.mapping_path}"
  websocket_url       = var.custom_domain == null ? "${aws_apigatewayv2_api.this.api_endpoint}/${var.stage_name}" : "wss://${var.custom_domain.domain_name}${local.mapping_path}"
}
