terraform {
  # Terraform >= 1.5 and OpenTofu >= 1.6 (the module uses optional() object
  # attributes with defaults, terraform_data and check-free preconditions).
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 5.53 is the first release where source_code_hash on aws_lambda_function is a
      # pure change trigger (it no longer has to equal the zip's hash), which the
      # build-from-source path relies on: the zip does not exist at plan time.
      version = ">= 5.53"
    }
  }
}
