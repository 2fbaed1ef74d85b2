variable "name" {
  description = "Name prefix of every resource; tests pass a unique one."
  type        = string
}

variable "region" {
  description = "AWS region to deploy to."
  type        = string
  default     = "us-east-1"
}
