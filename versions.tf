terraform {
  # Terraform >= 1.5 and OpenTofu >= 1.6 (the module uses optional() object
  # attributes with defaults, terraform_data and check-free preconditions).
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # The build-from-source path needs source_code_hash on aws_lambda_function
      # to be a pure change trigger (the zip does not exist at plan time, so the
      # hash is derived from the sources). It has been one since v5.51.0
      # (hashicorp/terraform-provider-aws#37669, which added code_sha256 for the
      # deployed package's hash); 5.53 is the oldest release this module is
      # declared for.
      version = ">= 5.53"
    }
  }
}
