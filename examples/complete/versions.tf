terraform {
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # The module needs >= 5.53; the echo function's nodejs22.x runtime is
      # known to the provider's runtime list from 6.0 on.
      version = ">= 6.0"
    }
  }
}

provider "aws" {
  region = var.region
}
