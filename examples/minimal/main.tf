# The smallest deployment: defaults everywhere, anyone may connect (no
# authorizer), Lambdas built from the module's Go sources at apply time.
module "websocket" {
  source = "../../"

  name = var.name
}
