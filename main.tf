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
  dns_suffix = data.aws_partition.current.dns_suffix
  account_id = data.aws_caller_identity.current.account_id

  # The AWS console of the partition (dashboard_url): China and GovCloud have their own.
  console_url = lookup({
    "aws-cn"     = "https://console.amazonaws.cn"
    "aws-us-gov" = "https://console.amazonaws-us-gov.com"
  }, local.partition, "https://${local.region}.console.aws.amazon.com")

  jwt_enabled        = var.authorizer.mode == "jwt"
  authorizer_enabled = var.authorizer.mode != "none"
  events_enabled     = var.event_bus != null
  cleanup_enabled    = var.cleanup_schedule_minutes > 0
  fanout_enabled     = var.distributed_fanout.enabled

  # Functions this configuration deploys; the authorizer only in mode jwt, the
  # fan-out worker only with distributed fan-out. The deployer redeploys the
  # stage after route changes (api.tf).
  function_names = concat(["websocket", "publisher", "deployer"], local.jwt_enabled ? ["authorizer"] : [], local.fanout_enabled ? ["fanout"] : [])

  # Endpoints. With a custom domain, clients connect through the domain and its
  # API mapping path. The functions always post to the execute-api endpoint of
  # the stage: it works from the first apply, whereas the domain needs its DNS
  # record (created outside the module) and may be fronted by something that
  # does not serve @connections (a CDN, another API's mapping).
  mapping_path        = try(var.custom_domain.api_mapping_key, null) == null ? "" : "/${var.custom_domain.api_mapping_key}"
  management_endpoint = "${replace(aws_apigatewayv2_api.this.api_endpoint, "wss://", "https://")}/${var.stage_name}"
  websocket_url       = var.custom_domain == null ? "${aws_apigatewayv2_api.this.api_endpoint}/${var.stage_name}" : "wss://${var.custom_domain.domain_name}${local.mapping_path}"
}
