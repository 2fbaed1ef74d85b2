locals {
  tags = {
    Example = "laravel"
    Name    = var.name
  }
  secret_parameter = "/${var.name}/pusher-app-secret"
}

################################################################################
# The Pusher app secret, generated once and kept in SSM (SecureString)
################################################################################

# AWS generates the value (no random provider needed). A data source is read
# on every plan, so the parameter keeps the first value (ignore_changes).
data "aws_secretsmanager_random_password" "pusher" {
  password_length     = 40
  exclude_punctuation = true
}

# The value is in this example's state (as for any secret Terraform creates);
# the module only gets the parameter's name. To keep it out of state
# entirely, create the parameter yourself (aws ssm put-parameter --type
# SecureString) and pass its name as pusher.secret_ssm_parameter.
resource "aws_ssm_parameter" "pusher_secret" {
  name        = local.secret_parameter
  description = "Pusher app secret of ${var.name} (PUSHER_APP_SECRET)"
  type        = "SecureString"
  value       = data.aws_secretsmanager_random_password.pusher.random_password
  tags        = local.tags

  lifecycle {
    ignore_changes = [value]
  }
}

################################################################################
# The module in Pusher mode: one host for Laravel Echo and the broadcaster
################################################################################

module "websocket" {
  source = "../../"

  name                = var.name
  access_logs_enabled = var.access_logs_enabled
  tags                = local.tags

  pusher = {
    enabled              = true
    app_id               = coalesce(var.app_id, var.name)
    key                  = coalesce(var.app_key, "${var.name}-key")
    secret_ssm_parameter = aws_ssm_parameter.pusher_secret.name
    alias                = var.alias
    acm_certificate_arn  = var.acm_certificate_arn
  }
}
