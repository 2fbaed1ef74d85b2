# A public chat: no authorizer, clients subscribe to a channel and publish to
# it with the built-in actions; the demo page of the local gateway
# (cmd/wslocal/web, served by `make dev`) talks to this API when opened with
# ?url=wss://... (output demo_page_url).
module "websocket" {
  source = "../../"

  name = var.name

  # Off unless asked for (see variables.tf): access logs need API Gateway's
  # account-level CloudWatch Logs role, which a fresh account does not have.
  access_logs_enabled = var.access_logs_enabled

  # Chat traffic is bursty and small; keep a modest per-stage throttle so one
  # noisy client cannot use the account's shared API Gateway request budget.
  throttling_burst_limit = 200
  throttling_rate_limit  = 100

  # Chat messages are short-lived: keep logs a week.
  log_retention_in_days = 7
}
