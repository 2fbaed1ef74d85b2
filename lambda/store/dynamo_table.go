package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// TableAPI is the subset of *dynamodb.Client that CreateTable uses.
type TableAPI interface {
	CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	UpdateTimeToLive(ctx context.Context, in *dynamodb.UpdateTimeToLiveInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateTimeToLiveOutput, error)
	DescribeTimeToLive(ctx context.Context, in *dynamodb.DescribeTimeToLiveInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTimeToLiveOutput, error)
}

var _ TableAPI = (*dynamodb.Client)(nil)

// TableInput returns the CreateTable request for the store's table: the same
// schema the Terraform module declares (on-demand billing, pk/sk string keys,
// three GSIs that project their keys and ttl).
func TableInput(table string) *dynamodb.CreateTableInput {
	gsi := func(name, hash, rng string) types.GlobalSecondaryIndex {
		return types.GlobalSecondaryIndex{
			IndexName: aws.String(name),
			KeySchema: []types.KeySchemaElement{
				{AttributeName: aws.String(hash), KeyType: types.KeyTypeHash},
				{AttributeName: aws.String(rng), KeyType: types.KeyTypeRange},
			},
			Projection: &types.Projection{
				ProjectionType:   types.ProjectionTypeInclude,
				NonKeyAttributes: []string{attrTTL},
			},
		}
	}
	attrs := []types.AttributeDefinition{}
	for _, name := range []string{attrPK, attrSK, attrGSI1PK, attrGSI1SK, attrGSI2PK, attrGSI2SK, attrGSI3PK, attrGSI3SK} {
		attrs = append(attrs, types.AttributeDefinition{AttributeName: aws.String(name), AttributeType: types.ScalarAttributeTypeS})
	}
	return &dynamodb.CreateTableInput{
		TableName:            aws.String(table),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: attrs,
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(attrPK), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(attrSK), KeyType: types.KeyTypeRange},
		},
		GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{
			gsi(ChannelIndex, attrGSI1PK, attrGSI1SK),
			gsi(UserIndex, attrGSI2PK, attrGSI2SK),
			gsi(ShardIndex, attrGSI3PK, attrGSI3SK),
		},
	}
}

// CreateTable creates the store's table if it does not exist, waits until it
// and its indexes are ACTIVE and enables TTL on the ttl attribute. It is
// idempotent: an existing table is only waited for and its TTL enabled.
// An existing table with another schema (keys, indexes, or TTL on another
// attribute) is refused and left as it is: it is someone else's table.
func CreateTable(ctx context.Context, client TableAPI, table string) error {
	if table == "" {
		return errors.New("create table: empty table name")
	}
	_, err := client.CreateTable(ctx, TableInput(table))
	var inUse *types.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) {
		return fmt.Errorf("create table %s: %w", table, err)
	}
	desc, err := waitActive(ctx, client, table)
	if err != nil {
		return fmt.Errorf("create table %s: %w", table, err)
	}
	if err := sameSchema(desc, TableInput(table)); err != nil {
		return fmt.Errorf("table %s exists with another schema than the store's (%w): name another table, or delete this one if it is a leftover", table, err)
	}
	ttl, err := client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(table)})
	if err != nil {
		return fmt.Errorf("create table %s: describe ttl: %w", table, err)
	}
	if d := ttl.TimeToLiveDescription; d != nil &&
		(d.TimeToLiveStatus == types.TimeToLiveStatusEnabled || d.TimeToLiveStatus == types.TimeToLiveStatusEnabling) {
		if name := aws.ToString(d.AttributeName); name != attrTTL {
			return fmt.Errorf("table %s expires items by attribute %q, the store's need %q: name another table", table, name, attrTTL)
		}
		return nil
	}
	_, err = client.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName: aws.String(table),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{
			AttributeName: aws.String(attrTTL),
			Enabled:       aws.Bool(true),
		},
	})
	if err != nil {
		return fmt.Errorf("create table %s: enable ttl: %w", table, err)
	}
	return nil
}

// sameSchema reports how table differs from want in its keys and indexes.
func sameSchema(table *types.TableDescription, want *dynamodb.CreateTableInput) error {
	keys := func(ks []types.KeySchemaElement) string {
		var out []string
		for _, k := range ks {
			out = append(out, aws.ToString(k.AttributeName)+" "+string(k.KeyType))
		}
		return strings.Join(out, ", ")
	}
	if got, w := keys(table.KeySchema), keys(want.KeySchema); got != w {
		return fmt.Errorf("keys %s, want %s", got, w)
	}
	indexes := map[string]string{}
	for _, g := range table.GlobalSecondaryIndexes {
		indexes[aws.ToString(g.IndexName)] = keys(g.KeySchema)
	}
	for _, g := range want.GlobalSecondaryIndexes {
		name := aws.ToString(g.IndexName)
		got, ok := indexes[name]
		switch {
		case !ok:
			return fmt.Errorf("no index %s", name)
		case got != keys(g.KeySchema):
			return fmt.Errorf("index %s has keys %s, want %s", name, got, keys(g.KeySchema))
		}
	}
	return nil
}

// waitActive polls DescribeTable until the table and all its GSIs are
// ACTIVE, and returns its description.
func waitActive(ctx context.Context, client TableAPI, table string) (*types.TableDescription, error) {
	tick := 100 * time.Millisecond
	for {
		out, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
		var nf *types.ResourceNotFoundException
		if err != nil && !errors.As(err, &nf) {
			return nil, fmt.Errorf("describe: %w", err)
		}
		if err == nil && out.Table != nil && out.Table.TableStatus == types.TableStatusActive {
			active := true
			for _, g := range out.Table.GlobalSecondaryIndexes {
				if g.IndexStatus != types.IndexStatusActive {
					active = false
				}
			}
			if active {
				return out.Table, nil
			}
		}
		t := time.NewTimer(tick)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("wait until active: %w", ctx.Err())
		case <-t.C:
		}
		tick = min(2*tick, 2*time.Second)
	}
}
