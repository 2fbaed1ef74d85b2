package main

import (
	"encoding/json"
	"fmt"
	"sort"

	tfjson "github.com/hashicorp/terraform-json"
	"github.com/hashicorp/terraform-plugin-go/tfprotov5"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

// schemaSet holds the converted schemas of every resource and data source.
type schemaSet struct {
	provider    *tfprotov5.Schema
	resources   map[string]*tfprotov5.Schema
	dataSources map[string]*tfprotov5.Schema
}

// loadSchemas converts the generated AWS provider schemas to protocol 5.
func loadSchemas() (*schemaSet, error) {
	s := &schemaSet{
		provider:    providerSchema(),
		resources:   make(map[string]*tfprotov5.Schema, len(resourceSchemas)),
		dataSources: make(map[string]*tfprotov5.Schema, len(dataSourceSchemas)),
	}
	for name, load := range resourceSchemas {
		ps, err := convertSchema(load())
		if err != nil {
			return nil, fmt.Errorf("convert resource %s: %w", name, err)
		}
		s.resources[name] = ps
	}
	for name, load := range dataSourceSchemas {
		ps, err := convertSchema(load())
		if err != nil {
			return nil, fmt.Errorf("convert data source %s: %w", name, err)
		}
		s.dataSources[name] = ps
	}
	return s, nil
}

// providerSchema is the subset of the provider block the module's examples
// and tests use (the generated module has no provider block schema).
func providerSchema() *tfprotov5.Schema {
	str := func(name string) *tfprotov5.SchemaAttribute {
		return &tfprotov5.SchemaAttribute{Name: name, Type: tftypes.String, Optional: true}
	}
	return &tfprotov5.Schema{Block: &tfprotov5.SchemaBlock{
		Attributes: []*tfprotov5.SchemaAttribute{
			str("region"), str("profile"), str("access_key"), str("secret_key"),
			{Name: "skip_credentials_validation", Type: tftypes.Bool, Optional: true},
			{Name: "skip_requesting_account_id", Type: tftypes.Bool, Optional: true},
			{Name: "skip_metadata_api_check", Type: tftypes.String, Optional: true},
		},
		BlockTypes: []*tfprotov5.SchemaNestedBlock{{
			TypeName: "default_tags",
			Nesting:  tfprotov5.SchemaNestedBlockNestingModeList,
			MaxItems: 1,
			Block: &tfprotov5.SchemaBlock{Attributes: []*tfprotov5.SchemaAttribute{{
				Name: "tags", Type: tftypes.Map{ElementType: tftypes.String}, Optional: true,
			}}},
		}},
	}}
}

func convertSchema(js *tfjson.Schema) (*tfprotov5.Schema, error) {
	block, err := convertBlock(js.Block)
	if err != nil {
		return nil, err
	}
	return &tfprotov5.Schema{Version: int64(js.Version), Block: block}, nil
}

func convertBlock(b *tfjson.SchemaBlock) (*tfprotov5.SchemaBlock, error) {
	out := &tfprotov5.SchemaBlock{Deprecated: b.Deprecated, Description: b.Description}
	for _, name := range sortedKeys(b.Attributes) {
		a := b.Attributes[name]
		if a.AttributeNestedType != nil {
			return nil, fmt.Errorf("attribute %s: nested attribute types are not representable in protocol 5", name)
		}
		raw, err := json.Marshal(a.AttributeType)
		if err != nil {
			return nil, fmt.Errorf("attribute %s: marshal type: %w", name, err)
		}
		typ, err := tftypes.ParseJSONType(raw) //nolint:staticcheck // the supported way to read Terraform's JSON type syntax
		if err != nil {
			return nil, fmt.Errorf("attribute %s: parse type %s: %w", name, raw, err)
		}
		out.Attributes = append(out.Attributes, &tfprotov5.SchemaAttribute{
			Name: name, Type: typ, Description: a.Description,
			Required: a.Required, Optional: a.Optional, Computed: a.Computed,
			Sensitive: a.Sensitive, Deprecated: a.Deprecated,
		})
	}
	for _, name := range sortedKeys(b.NestedBlocks) {
		nb := b.NestedBlocks[name]
		inner, err := convertBlock(nb.Block)
		if err != nil {
			return nil, fmt.Errorf("block %s: %w", name, err)
		}
		mode, err := nestingMode(nb.NestingMode)
		if err != nil {
			return nil, fmt.Errorf("block %s: %w", name, err)
		}
		out.BlockTypes = append(out.BlockTypes, &tfprotov5.SchemaNestedBlock{
			TypeName: name, Block: inner, Nesting: mode,
			MinItems: int64(nb.MinItems), MaxItems: int64(nb.MaxItems),
		})
	}
	return out, nil
}

func nestingMode(m tfjson.SchemaNestingMode) (tfprotov5.SchemaNestedBlockNestingMode, error) {
	switch m {
	case tfjson.SchemaNestingModeSingle:
		return tfprotov5.SchemaNestedBlockNestingModeSingle, nil
	case tfjson.SchemaNestingModeGroup:
		return tfprotov5.SchemaNestedBlockNestingModeGroup, nil
	case tfjson.SchemaNestingModeList:
		return tfprotov5.SchemaNestedBlockNestingModeList, nil
	case tfjson.SchemaNestingModeSet:
		return tfprotov5.SchemaNestedBlockNestingModeSet, nil
	case tfjson.SchemaNestingModeMap:
		return tfprotov5.SchemaNestedBlockNestingModeMap, nil
	}
	return tfprotov5.SchemaNestedBlockNestingModeInvalid, fmt.Errorf("unknown nesting mode %q", m)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
