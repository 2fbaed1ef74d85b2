// Command terraform-provider-aws is a schema-replay stand-in for the
// hashicorp/aws provider, used only by the offline Terraform tests.
//
// It serves the real AWS provider schema (github.com/lonegunmanb/terraform-aws-schema,
// generated from hashicorp/aws v6.0.0) over plugin protocol 5, so Terraform and
// OpenTofu check every argument, block, type and reference of the module exactly
// as they would against the real provider. It cannot talk to AWS: plan returns
// the proposed state with unset computed attributes marked unknown, apply fills
// unknowns with placeholder values, and data sources echo their configuration
// with computed attributes filled the same way. It does not know provider-side
// validation (enum values, ARN formats), defaults or replace-vs-update; the
// real-AWS test tier covers those.
package main

import (
	"fmt"
	"log"
	"os"

	"github.com/hashicorp/terraform-plugin-go/tfprotov5"
	"github.com/hashicorp/terraform-plugin-go/tfprotov5/tf5server"
)

// providerAddress is the registry address Terraform reports in logs.
const providerAddress = "registry.terraform.io/hashicorp/aws"

func main() {
	schemas, err := loadSchemas()
	if err != nil {
		fmt.Fprintln(os.Stderr, "load schemas:", err)
		os.Exit(1)
	}
	if err := tf5server.Serve(providerAddress, func() tfprotov5.ProviderServer {
		return newServer(schemas)
	}); err != nil {
		log.Fatalf("serve %s: %v", providerAddress, err)
	}
}

// ensure the server implements the whole protocol at compile time.
var _ tfprotov5.ProviderServer = (*server)(nil)

// newServer returns a provider server that replays the given schemas.
func newServer(s *schemaSet) *server { return &server{schemas: s} }
