# The smallest deployment: defaults everywhere, anyone may connect (no
# authorizer), Lambdas built from the module's Go sources at apply time.
# Access logs are off unless asked for (see variables.tf): they need an
# account-level setting a fresh account does not have.
module "websocket" {
  source = "../../"

  name                = var.name
  access_logs_enabled = var.access_logs_enabled
}
