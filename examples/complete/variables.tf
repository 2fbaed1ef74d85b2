variable "name" {
  description = "Name prefix of every resource; tests pass a unique one."
  type        = string
}

variable "region" {
  description = "AWS region to deploy to."
  type        = string
  default     = "us-east-1"
}

variable "jwt_secret" {
  description = "HS256 secret the authorizer verifies tokens with, stored in Secrets Manager. `null` generates a random one (read it from the secret to sign tokens). The value of the first apply is kept: a later `jwt_secret` changes nothing (rotate the secret in Secrets Manager instead)."
  type        = string
  default     = null
  sensitive   = true
}

variable "jwt_issuer" {
  description = "Required `iss` claim of client tokens."
  type        = string
  default     = "wsforge-example"
}

variable "jwt_audience" {
  description = "Required `aud` claim of client tokens."
  type        = string
  default     = "websocket"
}

variable "custom_domain_name" {
  description = "Optional custom domain (e.g. ws.example.com); needs `certificate_arn`. You create the DNS alias record from the `custom_domain_target` output."
  type        = string
  default     = null
}

variable "certificate_arn" {
  description = "ACM certificate ARN for `custom_domain_name`, in the same region."
  type        = string
  default     = null
}

# Off by default, as in the other examples, so `terraform apply` works in a
# fresh account: API Gateway refuses stage access logs until its
# account-level CloudWatch Logs role is set, an account-wide change an example
# should not make on its own. Pass -var access_logs_enabled=true where the
# role is set (the module's own default is true).
variable "access_logs_enabled" {
  description = "Stage access logs; needs API Gateway's account-level CloudWatch Logs role, set once per account and region (off here so the example applies in a fresh account)."
  type        = bool
  default     = false
}

variable "fanout_threshold" {
  description = "Recipients above which a send is distributed over the fan-out queue and workers; `0` distributes every send (the real-AWS test uses it to exercise the queue path)."
  type        = number
  default     = 2000
}
