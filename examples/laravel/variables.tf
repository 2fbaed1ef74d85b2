variable "name" {
  description = "Name prefix of every resource; tests pass a unique one. Also the default Pusher app id."
  type        = string
}

variable "region" {
  description = "AWS region to deploy to."
  type        = string
  default     = "us-east-1"
}

variable "app_id" {
  description = "Pusher app id (`PUSHER_APP_ID`); null means `name`."
  type        = string
  default     = null
}

variable "app_key" {
  description = "Pusher app key (`PUSHER_APP_KEY`; public, it is in your JavaScript); null means `<name>-key`."
  type        = string
  default     = null
}

variable "alias" {
  description = "Your host name for the Pusher endpoint (e.g. `ws.example.com`); null uses the `*.cloudfront.net` name. Needs `acm_certificate_arn`."
  type        = string
  default     = null
}

variable "acm_certificate_arn" {
  description = "ACM certificate in us-east-1 for `alias`."
  type        = string
  default     = null
}

# Off by default so the example applies in any account (see examples/minimal).
variable "access_logs_enabled" {
  description = "Stage access logs; needs API Gateway's account-level CloudWatch Logs role, set once per account and region (off here so the example applies in a fresh account)."
  type        = bool
  default     = false
}
