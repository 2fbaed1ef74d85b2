package localgw

import (
	"fmt"
	"regexp"
)

// stageName is what API Gateway accepts as a stage name: "Stage names can
// only contain alphanumeric characters, hyphens, and underscores. Maximum
// length is 128 characters." The module's stage_name validation uses the
// same pattern.
var stageName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

// validateStage refuses a stage API Gateway would refuse. Beyond fidelity,
// a "*" or "?" in the stage would be a wildcard inside the method ARN that
// authorizer policies are matched against.
func validateStage(stage string) error {
	if !stageName.MatchString(stage) {
		return fmt.Errorf("localgw: invalid stage %q: want 1 to 128 letters, digits, '-' or '_', as API Gateway requires", stage)
	}
	return nil
}
