package main

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-go/tfprotov5"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

// server implements tfprotov5.ProviderServer over a schemaSet.
type server struct {
	schemas *schemaSet
	fill    placeholders
}

func errorDiag(summary string, err error) []*tfprotov5.Diagnostic {
	return []*tfprotov5.Diagnostic{{
		Severity: tfprotov5.DiagnosticSeverityError,
		Summary:  summary,
		Detail:   err.Error(),
	}}
}

func (s *server) resourceType(name string) (tftypes.Type, *tfprotov5.SchemaBlock, error) {
	sc, ok := s.schemas.resources[name]
	if !ok {
		return nil, nil, fmt.Errorf("resource type %s is not in the replayed schema", name)
	}
	return sc.ValueType(), sc.Block, nil
}

func (s *server) GetMetadata(context.Context, *tfprotov5.GetMetadataRequest) (*tfprotov5.GetMetadataResponse, error) {
	resp := &tfprotov5.GetMetadataResponse{ServerCapabilities: &tfprotov5.ServerCapabilities{}}
	for _, name := range sortedKeys(s.schemas.resources) {
		resp.Resources = append(resp.Resources, tfprotov5.ResourceMetadata{TypeName: name})
	}
	for _, name := range sortedKeys(s.schemas.dataSources) {
		resp.DataSources = append(resp.DataSources, tfprotov5.DataSourceMetadata{TypeName: name})
	}
	return resp, nil
}

func (s *server) GetProviderSchema(context.Context, *tfprotov5.GetProviderSchemaRequest) (*tfprotov5.GetProviderSchemaResponse, error) {
	return &tfprotov5.GetProviderSchemaResponse{
		ServerCapabilities: &tfprotov5.ServerCapabilities{},
		Provider:           s.schemas.provider,
		ResourceSchemas:    s.schemas.resources,
		DataSourceSchemas:  s.schemas.dataSources,
	}, nil
}

func (s *server) PrepareProviderConfig(_ context.Context, req *tfprotov5.PrepareProviderConfigRequest) (*tfprotov5.PrepareProviderConfigResponse, error) {
	return &tfprotov5.PrepareProviderConfigResponse{PreparedConfig: req.Config}, nil
}

func (s *server) ConfigureProvider(context.Context, *tfprotov5.ConfigureProviderRequest) (*tfprotov5.ConfigureProviderResponse, error) {
	return &tfprotov5.ConfigureProviderResponse{}, nil
}

func (s *server) StopProvider(context.Context, *tfprotov5.StopProviderRequest) (*tfprotov5.StopProviderResponse, error) {
	return &tfprotov5.StopProviderResponse{}, nil
}

// ValidateResourceTypeConfig accepts everything: Terraform core already checks
// arguments, blocks, types and required attributes against the schema.
func (s *server) ValidateResourceTypeConfig(context.Context, *tfprotov5.ValidateResourceTypeConfigRequest) (*tfprotov5.ValidateResourceTypeConfigResponse, error) {
	return &tfprotov5.ValidateResourceTypeConfigResponse{}, nil
}

func (s *server) UpgradeResourceState(_ context.Context, req *tfprotov5.UpgradeResourceStateRequest) (*tfprotov5.UpgradeResourceStateResponse, error) {
	typ, _, err := s.resourceType(req.TypeName)
	if err != nil {
		return &tfprotov5.UpgradeResourceStateResponse{Diagnostics: errorDiag("unknown resource type", err)}, nil
	}
	val, err := req.RawState.Unmarshal(typ)
	if err != nil {
		return &tfprotov5.UpgradeResourceStateResponse{Diagnostics: errorDiag("decode state", err)}, nil
	}
	dv, err := tfprotov5.NewDynamicValue(typ, val)
	if err != nil {
		return &tfprotov5.UpgradeResourceStateResponse{Diagnostics: errorDiag("encode state", err)}, nil
	}
	return &tfprotov5.UpgradeResourceStateResponse{UpgradedState: &dv}, nil
}

// ReadResource reports that nothing drifted.
func (s *server) ReadResource(_ context.Context, req *tfprotov5.ReadResourceRequest) (*tfprotov5.ReadResourceResponse, error) {
	return &tfprotov5.ReadResourceResponse{NewState: req.CurrentState, Private: req.Private}, nil
}

// PlanResourceChange returns the proposed state; on create, computed
// attributes the configuration leaves unset become unknown, as the real
// provider's would.
func (s *server) PlanResourceChange(_ context.Context, req *tfprotov5.PlanResourceChangeRequest) (*tfprotov5.PlanResourceChangeResponse, error) {
	typ, block, err := s.resourceType(req.TypeName)
	if err != nil {
		return &tfprotov5.PlanResourceChangeResponse{Diagnostics: errorDiag("unknown resource type", err)}, nil
	}
	proposed, err := req.ProposedNewState.Unmarshal(typ)
	if err != nil {
		return &tfprotov5.PlanResourceChangeResponse{Diagnostics: errorDiag("decode proposed state", err)}, nil
	}
	prior, err := req.PriorState.Unmarshal(typ)
	if err != nil {
		return &tfprotov5.PlanResourceChangeResponse{Diagnostics: errorDiag("decode prior state", err)}, nil
	}
	planned := proposed
	if !proposed.IsNull() && prior.IsNull() {
		planned, err = markComputedUnknown(block, proposed)
		if err != nil {
			return &tfprotov5.PlanResourceChangeResponse{Diagnostics: errorDiag("plan "+req.TypeName, err)}, nil
		}
	}
	replace, err := requiresReplace(req.TypeName, prior, proposed)
	if err != nil {
		return &tfprotov5.PlanResourceChangeResponse{Diagnostics: errorDiag("plan "+req.TypeName, err)}, nil
	}
	dv, err := tfprotov5.NewDynamicValue(typ, planned)
	if err != nil {
		return &tfprotov5.PlanResourceChangeResponse{Diagnostics: errorDiag("encode planned state", err)}, nil
	}
	return &tfprotov5.PlanResourceChangeResponse{
		PlannedState:                &dv,
		PlannedPrivate:              req.PriorPrivate,
		RequiresReplace:             replace,
		UnsafeToUseLegacyTypeSystem: true,
	}, nil
}

// forceNew lists, per resource type, top-level arguments whose change makes
// the real provider replace the object (ForceNew), for the types whose
// replacement the tests follow. The schema carries no such flag, so without
// this list every change would plan as an in-place update.
var forceNew = map[string][]string{
	// triggers is how a configuration asks for a new deployment.
	"aws_apigatewayv2_deployment": {"api_id", "triggers"},
	"aws_apigatewayv2_route":      {"api_id"},
	// A new invocation (the module's redeploy) whenever its triggers change.
	"aws_lambda_invocation": {"function_name", "qualifier", "triggers"},
}

// requiresReplace returns the paths of the forceNew arguments that differ
// between the prior state and the proposed one (none on create or destroy).
func requiresReplace(typeName string, prior, proposed tftypes.Value) ([]*tftypes.AttributePath, error) {
	names := forceNew[typeName]
	if len(names) == 0 || prior.IsNull() || proposed.IsNull() || !proposed.IsKnown() {
		return nil, nil
	}
	var before, after map[string]tftypes.Value
	if err := prior.As(&before); err != nil {
		return nil, fmt.Errorf("read prior state: %w", err)
	}
	if err := proposed.As(&after); err != nil {
		return nil, fmt.Errorf("read proposed state: %w", err)
	}
	var out []*tftypes.AttributePath
	for _, name := range names {
		if !before[name].Equal(after[name]) {
			out = append(out, tftypes.NewAttributePath().WithAttributeName(name))
		}
	}
	return out, nil
}

// ApplyResourceChange replaces every unknown in the planned state with a
// placeholder value of the right type.
func (s *server) ApplyResourceChange(_ context.Context, req *tfprotov5.ApplyResourceChangeRequest) (*tfprotov5.ApplyResourceChangeResponse, error) {
	typ, _, err := s.resourceType(req.TypeName)
	if err != nil {
		return &tfprotov5.ApplyResourceChangeResponse{Diagnostics: errorDiag("unknown resource type", err)}, nil
	}
	planned, err := req.PlannedState.Unmarshal(typ)
	if err != nil {
		return &tfprotov5.ApplyResourceChangeResponse{Diagnostics: errorDiag("decode planned state", err)}, nil
	}
	newState := planned
	if !planned.IsNull() {
		newState, err = s.fill.fillUnknown(req.TypeName, planned)
		if err != nil {
			return &tfprotov5.ApplyResourceChangeResponse{Diagnostics: errorDiag("apply "+req.TypeName, err)}, nil
		}
	}
	dv, err := tfprotov5.NewDynamicValue(typ, newState)
	if err != nil {
		return &tfprotov5.ApplyResourceChangeResponse{Diagnostics: errorDiag("encode new state", err)}, nil
	}
	return &tfprotov5.ApplyResourceChangeResponse{NewState: &dv, Private: req.PlannedPrivate, UnsafeToUseLegacyTypeSystem: true}, nil
}

func (s *server) ImportResourceState(_ context.Context, req *tfprotov5.ImportResourceStateRequest) (*tfprotov5.ImportResourceStateResponse, error) {
	return &tfprotov5.ImportResourceStateResponse{Diagnostics: errorDiag("import not supported",
		fmt.Errorf("the schema-replay provider cannot import %s %q", req.TypeName, req.ID))}, nil
}

func (s *server) MoveResourceState(_ context.Context, req *tfprotov5.MoveResourceStateRequest) (*tfprotov5.MoveResourceStateResponse, error) {
	return &tfprotov5.MoveResourceStateResponse{Diagnostics: errorDiag("move not supported",
		fmt.Errorf("the schema-replay provider cannot move state into %s", req.TargetTypeName))}, nil
}

func (s *server) ValidateDataSourceConfig(context.Context, *tfprotov5.ValidateDataSourceConfigRequest) (*tfprotov5.ValidateDataSourceConfigResponse, error) {
	return &tfprotov5.ValidateDataSourceConfigResponse{}, nil
}

// ReadDataSource echoes the configuration with computed attributes filled in.
func (s *server) ReadDataSource(_ context.Context, req *tfprotov5.ReadDataSourceRequest) (*tfprotov5.ReadDataSourceResponse, error) {
	sc, ok := s.schemas.dataSources[req.TypeName]
	if !ok {
		return &tfprotov5.ReadDataSourceResponse{Diagnostics: errorDiag("unknown data source",
			fmt.Errorf("data source %s is not in the replayed schema", req.TypeName))}, nil
	}
	typ := sc.ValueType()
	cfg, err := req.Config.Unmarshal(typ)
	if err != nil {
		return &tfprotov5.ReadDataSourceResponse{Diagnostics: errorDiag("decode config", err)}, nil
	}
	withUnknown, err := markComputedUnknown(sc.Block, cfg)
	if err != nil {
		return &tfprotov5.ReadDataSourceResponse{Diagnostics: errorDiag("read "+req.TypeName, err)}, nil
	}
	state, err := fillStable(req.TypeName, withUnknown)
	if err != nil {
		return &tfprotov5.ReadDataSourceResponse{Diagnostics: errorDiag("read "+req.TypeName, err)}, nil
	}
	dv, err := tfprotov5.NewDynamicValue(typ, state)
	if err != nil {
		return &tfprotov5.ReadDataSourceResponse{Diagnostics: errorDiag("encode state", err)}, nil
	}
	return &tfprotov5.ReadDataSourceResponse{State: &dv}, nil
}

func (s *server) GetFunctions(context.Context, *tfprotov5.GetFunctionsRequest) (*tfprotov5.GetFunctionsResponse, error) {
	return &tfprotov5.GetFunctionsResponse{}, nil
}

func (s *server) CallFunction(_ context.Context, req *tfprotov5.CallFunctionRequest) (*tfprotov5.CallFunctionResponse, error) {
	return &tfprotov5.CallFunctionResponse{Error: &tfprotov5.FunctionError{
		Text: fmt.Sprintf("the schema-replay provider serves no function %q", req.Name)}}, nil
}

var errNoEphemeral = fmt.Errorf("the schema-replay provider serves no ephemeral resources")

func (s *server) ValidateEphemeralResourceConfig(context.Context, *tfprotov5.ValidateEphemeralResourceConfigRequest) (*tfprotov5.ValidateEphemeralResourceConfigResponse, error) {
	return &tfprotov5.ValidateEphemeralResourceConfigResponse{Diagnostics: errorDiag("ephemeral resources unsupported", errNoEphemeral)}, nil
}

func (s *server) OpenEphemeralResource(context.Context, *tfprotov5.OpenEphemeralResourceRequest) (*tfprotov5.OpenEphemeralResourceResponse, error) {
	return &tfprotov5.OpenEphemeralResourceResponse{Diagnostics: errorDiag("ephemeral resources unsupported", errNoEphemeral)}, nil
}

func (s *server) RenewEphemeralResource(context.Context, *tfprotov5.RenewEphemeralResourceRequest) (*tfprotov5.RenewEphemeralResourceResponse, error) {
	return &tfprotov5.RenewEphemeralResourceResponse{Diagnostics: errorDiag("ephemeral resources unsupported", errNoEphemeral)}, nil
}

func (s *server) CloseEphemeralResource(context.Context, *tfprotov5.CloseEphemeralResourceRequest) (*tfprotov5.CloseEphemeralResourceResponse, error) {
	return &tfprotov5.CloseEphemeralResourceResponse{Diagnostics: errorDiag("ephemeral resources unsupported", errNoEphemeral)}, nil
}
