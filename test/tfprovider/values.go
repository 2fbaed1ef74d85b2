package main

import (
	"fmt"
	"math/big"
	"strings"
	"sync/atomic"

	"github.com/hashicorp/terraform-plugin-go/tfprotov5"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

// markComputedUnknown returns obj (an object of block's type) with every
// computed attribute that is null turned unknown, in nested blocks too.
func markComputedUnknown(block *tfprotov5.SchemaBlock, obj tftypes.Value) (tftypes.Value, error) {
	if obj.IsNull() || !obj.IsKnown() {
		return obj, nil
	}
	var attrs map[string]tftypes.Value
	if err := obj.As(&attrs); err != nil {
		return obj, fmt.Errorf("read object: %w", err)
	}
	for _, a := range block.Attributes {
		if v, ok := attrs[a.Name]; ok && a.Computed && v.IsNull() {
			attrs[a.Name] = tftypes.NewValue(a.Type, tftypes.UnknownValue)
		}
	}
	for _, nb := range block.BlockTypes {
		v, ok := attrs[nb.TypeName]
		if !ok || v.IsNull() || !v.IsKnown() {
			continue
		}
		nv, err := markNested(nb, v)
		if err != nil {
			return obj, fmt.Errorf("block %s: %w", nb.TypeName, err)
		}
		attrs[nb.TypeName] = nv
	}
	return tftypes.NewValue(obj.Type(), attrs), nil
}

func markNested(nb *tfprotov5.SchemaNestedBlock, v tftypes.Value) (tftypes.Value, error) {
	switch nb.Nesting {
	case tfprotov5.SchemaNestedBlockNestingModeSingle, tfprotov5.SchemaNestedBlockNestingModeGroup:
		return markComputedUnknown(nb.Block, v)
	case tfprotov5.SchemaNestedBlockNestingModeList, tfprotov5.SchemaNestedBlockNestingModeSet:
		var elems []tftypes.Value
		if err := v.As(&elems); err != nil {
			return v, err
		}
		for i := range elems {
			e, err := markComputedUnknown(nb.Block, elems[i])
			if err != nil {
				return v, err
			}
			elems[i] = e
		}
		return tftypes.NewValue(v.Type(), elems), nil
	case tfprotov5.SchemaNestedBlockNestingModeMap:
		var elems map[string]tftypes.Value
		if err := v.As(&elems); err != nil {
			return v, err
		}
		for k, e := range elems {
			ne, err := markComputedUnknown(nb.Block, e)
			if err != nil {
				return v, err
			}
			elems[k] = ne
		}
		return tftypes.NewValue(v.Type(), elems), nil
	}
	return v, fmt.Errorf("unsupported nesting mode %v", nb.Nesting)
}

// The account and region every placeholder ARN and data source reports.
const (
	fakeAccountID = "123456789012"
	fakeRegion    = "us-east-1"
)

// placeholders makes distinct, plausible values for attributes only AWS
// could know (ids, ARNs, endpoints).
type placeholders struct{ seq atomic.Int64 }

// fillUnknown replaces every unknown inside v with a placeholder unique to
// this call (resources: every new object gets its own id and ARN).
func (p *placeholders) fillUnknown(typeName string, v tftypes.Value) (tftypes.Value, error) {
	return fillWith(typeName, fmt.Sprintf("%s-%04d", strings.TrimPrefix(typeName, "aws_"), p.seq.Add(1)), v)
}

// fillStable replaces unknowns with values that depend only on the type, so
// data sources read the same on every plan (no spurious diffs).
func fillStable(typeName string, v tftypes.Value) (tftypes.Value, error) {
	return fillWith(typeName, strings.TrimPrefix(typeName, "aws_"), v)
}

func fillWith(typeName, uid string, v tftypes.Value) (tftypes.Value, error) {
	return tftypes.Transform(v, func(path *tftypes.AttributePath, val tftypes.Value) (tftypes.Value, error) {
		if val.IsKnown() {
			return val, nil
		}
		return placeholder(typeName, uid, lastAttributeName(path), val.Type())
	})
}

func lastAttributeName(path *tftypes.AttributePath) string {
	steps := path.Steps()
	for i := len(steps) - 1; i >= 0; i-- {
		if name, ok := steps[i].(tftypes.AttributeName); ok {
			return string(name)
		}
	}
	return ""
}

func placeholder(typeName, uid, attr string, typ tftypes.Type) (tftypes.Value, error) {
	switch {
	case typ.Is(tftypes.String):
		return tftypes.NewValue(typ, placeholderString(typeName, uid, attr)), nil
	case typ.Is(tftypes.Number):
		return tftypes.NewValue(typ, big.NewFloat(1)), nil
	case typ.Is(tftypes.Bool):
		return tftypes.NewValue(typ, false), nil
	case typ.Is(tftypes.List{}), typ.Is(tftypes.Set{}), typ.Is(tftypes.Tuple{}):
		return tftypes.NewValue(typ, []tftypes.Value{}), nil
	case typ.Is(tftypes.Map{}):
		return tftypes.NewValue(typ, map[string]tftypes.Value{}), nil
	case typ.Is(tftypes.Object{}):
		obj := typ.(tftypes.Object)
		attrs := make(map[string]tftypes.Value, len(obj.AttributeTypes))
		for name, at := range obj.AttributeTypes {
			attrs[name] = tftypes.NewValue(at, nil)
		}
		return tftypes.NewValue(typ, attrs), nil
	}
	return tftypes.Value{}, fmt.Errorf("no placeholder for %s of type %s", attr, typ)
}

func placeholderString(typeName, uid, attr string) string {
	service := strings.SplitN(strings.TrimPrefix(typeName, "aws_"), "_", 2)[0]
	switch {
	case attr == "account_id":
		return fakeAccountID
	case attr == "partition":
		return "aws"
	case attr == "dns_suffix":
		return "amazonaws.com"
	case typeName == "aws_region" && (attr == "id" || attr == "name" || attr == "region"):
		return fakeRegion
	case attr == "region":
		return fakeRegion
	case typeName == "aws_sqs_queue" && (attr == "url" || attr == "id"):
		// A queue's id is its URL.
		return "https://sqs." + fakeRegion + ".amazonaws.com/" + fakeAccountID + "/" + uid
	case attr == "id":
		return uid
	case attr == "execution_arn":
		return "arn:aws:execute-api:" + fakeRegion + ":" + fakeAccountID + ":" + uid
	case attr == "arn" || strings.HasSuffix(attr, "_arn"):
		return fmt.Sprintf("arn:aws:%s:%s:%s:%s", service, fakeRegion, fakeAccountID, uid)
	case attr == "api_endpoint":
		return "wss://" + uid + ".execute-api." + fakeRegion + ".amazonaws.com"
	case attr == "invoke_url":
		return "wss://" + uid + ".execute-api." + fakeRegion + ".amazonaws.com/stage"
	case strings.HasSuffix(attr, "_url") || strings.HasSuffix(attr, "_endpoint"):
		return "https://" + uid + ".example.com"
	}
	return "fake-" + attr + "-" + uid
}
