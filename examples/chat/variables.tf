variable "name" {
  description = "Name prefix of every resource; tests pass a unique one."
  type        = string
}

variable "region" {
  description = "AWS region to deploy to."
  type        = string
  default     = "us-east-1"
}

# Off by default so the example applies in any account: API Gateway refuses
# stage access logs ("CloudWatch Logs role ARN must be set in account
# settings to enable logging") until its account-level CloudWatch Logs role
# is set, and setting that role is an account-wide change an example should
# not make on its own. Pass -var access_logs_enabled=true where the role is
# set (the module's own default is true).
variable "access_logs_enabled" {
  description = "Stage access logs; needs API Gateway's account-level CloudWatch Logs role, set once per account and region (off here so the example applies in a fresh account)."
  type        = bool
  default     = false
}
