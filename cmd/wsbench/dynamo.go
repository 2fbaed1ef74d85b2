package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"
	"golang.org/x/sync/errgroup"

	"github.com/wsforge/terraform-aws-websocket/lambda/localgw"
	"github.com/wsforge/terraform-aws-websocket/lambda/protocol"
	"github.com/wsforge/terraform-aws-websocket/lambda/realtime"
	"github.com/wsforge/terraform-aws-websocket/lambda/sender"
	"github.com/wsforge/terraform-aws-websocket/lambda/store"
)

// countingPoster stands in for the management API where only DynamoDB's
// requests are measured: it accepts every post and counts it.
type countingPoster struct{ posts atomic.Int64 }

func (c *countingPoster) Post(context.Context, string, []byte) error {
	c.posts.Add(1)
	return nil
}
func (c *countingPoster) Delete(context.Context, string) error { return nil }
func (c *countingPoster) Get(context.Context, string) (sender.ConnectionInfo, error) {
	return sender.ConnectionInfo{}, nil
}

// runDynamo measures DynamoDB requests per operation and the channel and
// user lookups at scale against DynamoDB Local, through the real store.
func runDynamo(args []string) error {
	fs := flag.NewFlagSet("dynamo", flag.ExitOnError)
	endpoint := fs.String("endpoint", os.Getenv("WS_DYNAMODB_ENDPOINT"), "DynamoDB Local endpoint (default $WS_DYNAMODB_ENDPOINT)")
	big := fs.Int("channel", 100000, "members of the large channel (filled with BatchWriteItem)")
	small := fs.Int("small", 1000, "connections made through the store itself (connect + join), for the channel send and broadcast rows")
	_ = fs.Parse(args)
	if *endpoint == "" {
		return errors.New("dynamo: -endpoint or WS_DYNAMODB_ENDPOINT is required (scripts/dynamodb-local.sh start)")
	}
	ctx := context.Background()
	rc := store.NewRequestCounter()
	client := dynamodb.New(dynamodb.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(*endpoint),
		Credentials:                     credentials.NewStaticCredentialsProvider("local", "local", ""),
		DisableValidateResponseChecksum: true,
		APIOptions:                      []func(*middleware.Stack) error{rc.AddToStack},
		Retryer:                         localgw.DynamoDBLocalRetryer(),
	})
	table := fmt.Sprintf("wsbench-%d", time.Now().UnixNano())
	if err := store.CreateTable(ctx, client, table); err != nil {
		return err
	}
	defer func() {
		_, _ = client.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(table)})
	}()
	db, err := store.NewDynamoDB(client, store.DynamoOptions{Table: table})
	if err != nil {
		return err
	}
	poster := &countingPoster{}
	m, err := realtime.New(realtime.Config{Store: db, Poster: poster, Sender: sender.Options{Concurrency: 256, OmitDelivered: true}})
	if err != nil {
		return err
	}

	type measured struct {
		name   string
		counts store.RequestCounts
		note   string
	}
	var rows []measured
	measure := func(name, note string, fn func() error) error {
		before := rc.Snapshot()
		if err := fn(); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		rows = append(rows, measured{name, rc.Snapshot().Sub(before), note})
		return nil
	}
	conn := func(id, user string) store.Connection {
		return store.Connection{ID: id, UserID: user, ConnectedAt: time.Now(), SourceIP: "127.0.0.1", UserAgent: "wsbench"}
	}

	// Single operations.
	steps := []struct {
		name string
		fn   func() error
	}{
		{"connect", func() error { return db.AddConnection(ctx, conn("op-a", "user-a")) }},
		{"join", func() error { _, err := db.Join(ctx, "op-a", "room-1"); return err }},
		{"join (already a member)", func() error { _, err := db.Join(ctx, "op-a", "room-1"); return err }},
		{"leave", func() error { _, err := db.Leave(ctx, "op-a", "room-1"); return err }},
		{"disconnect (no channels)", func() error { _, err := db.RemoveConnection(ctx, "op-a"); return err }},
	}
	for _, s := range steps {
		if err := measure(s.name, "", s.fn); err != nil {
			return err
		}
	}
	for _, k := range []int{3, 20} {
		id := fmt.Sprintf("op-b%d", k)
		if err := db.AddConnection(ctx, conn(id, "")); err != nil {
			return err
		}
		for c := range k {
			if _, err := db.Join(ctx, id, fmt.Sprintf("room-%d", c)); err != nil {
				return err
			}
		}
		if err := measure(fmt.Sprintf("disconnect (%d channels)", k), "", func() error { _, err := db.RemoveConnection(ctx, id); return err }); err != nil {
			return err
		}
		for c := range k {
			room := fmt.Sprintf("room-%d", c)
			if err := db.ChannelMembers(ctx, room, func(ids []string) error {
				if slices.Contains(ids, id) {
					return fmt.Errorf("disconnect left %s in %s", id, room)
				}
				return nil
			}); err != nil {
				return err
			}
		}
	}

	// A user with 10 devices.
	for i := range 10 {
		if err := db.AddConnection(ctx, conn(fmt.Sprintf("dev-%02d", i), "user-10")); err != nil {
			return err
		}
	}
	if err := measure("send to user (10 devices)", "", func() error {
		rep, err := m.SendToUser(ctx, "user-10", []byte("hi"))
		if err == nil && rep.Delivered != 10 {
			err = fmt.Errorf("delivered %d of 10", rep.Delivered)
		}
		return err
	}); err != nil {
		return err
	}

	// A history channel of 10 members: a send appends to the stream (one
	// transaction; a process that has not seen the stream reads its meta
	// once), and a resubscribe with since reads the meta and the gap.
	hist, err := store.NewDynamoHistory(client, store.DynamoOptions{Table: table})
	if err != nil {
		return err
	}
	lim := realtime.HistoryRules{{Pattern: "hist-*", Size: 100, TTL: time.Hour}}
	mh, err := realtime.New(realtime.Config{Store: db, Poster: poster, History: hist, HistoryRules: lim, Sender: sender.Options{Concurrency: 256, OmitDelivered: true}})
	if err != nil {
		return err
	}
	for i := range 10 {
		if _, err := db.Join(ctx, fmt.Sprintf("dev-%02d", i), "hist-1"); err != nil {
			return err
		}
	}
	histSend := func() error {
		rep, err := mh.SendToChannel(ctx, "hist-1", []byte(`{"n":1}`))
		if err == nil && rep.Delivered != 10 {
			err = fmt.Errorf("delivered %d of 10", rep.Delivered)
		}
		return err
	}
	if err := measure("send to history channel of 10 (first)", "creates the stream", histSend); err != nil {
		return err
	}
	for range 5 {
		if err := measure("send to history channel of 10", "", histSend); err != nil {
			return err
		}
	}
	// Keep one steady-state row: the last of the five sends.
	rows = append(rows[:len(rows)-5], rows[len(rows)-1])
	if err := measure("read history (5 missed)", "what a resubscribe with since costs", func() error {
		_, pubs, err := hist.ReadHistory(ctx, "hist-1", 1, 100, protocol.MaxFrame, store.HistoryLimits{Size: 100, TTL: time.Hour})
		if err == nil && len(pubs) != 5 {
			err = fmt.Errorf("read %d of 5", len(pubs))
		}
		return err
	}); err != nil {
		return err
	}

	// A channel of *small members made through the store, and broadcast.
	fillStart := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for i := range *small {
		g.Go(func() error {
			id := fmt.Sprintf("small-%06d", i)
			if err := db.AddConnection(gctx, conn(id, "")); err != nil {
				return err
			}
			_, err := db.Join(gctx, id, "small")
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wsbench: %d connections joined through the store in %s\n", *small, time.Since(fillStart).Round(time.Millisecond))
	if err := measure(fmt.Sprintf("send to channel of %d", *small), "", func() error {
		rep, err := m.SendToChannel(ctx, "small", []byte("hi"))
		if err == nil && rep.Delivered != *small {
			err = fmt.Errorf("delivered %d of %d", rep.Delivered, *small)
		}
		return err
	}); err != nil {
		return err
	}
	all := *small + 10
	if err := measure(fmt.Sprintf("broadcast to %d", all), "", func() error {
		rep, err := m.Broadcast(ctx, []byte("hi"))
		if err == nil && rep.Delivered != all {
			err = fmt.Errorf("delivered %d of %d", rep.Delivered, all)
		}
		return err
	}); err != nil {
		return err
	}

	// The large channel, filled with BatchWriteItem from the membership item
	// the store itself wrote for one connection.
	fill, err := fillChannel(ctx, client, db, table, "big", *big)
	if err != nil {
		return err
	}
	sendStart := time.Now()
	var wall time.Duration
	if err := measure(fmt.Sprintf("send to channel of %d", *big), "", func() error {
		rep, err := m.SendToChannel(ctx, "big", []byte("hi"))
		wall = time.Since(sendStart)
		if err == nil && rep.Delivered != *big {
			err = fmt.Errorf("delivered %d of %d", rep.Delivered, *big)
		}
		return err
	}); err != nil {
		return err
	}
	rows[len(rows)-1].note = fmt.Sprintf("members filled by BatchWriteItem in %s; the send took %s (posts counted, not sent)", fill.Round(time.Second), wall.Round(time.Millisecond))

	fmt.Printf("DynamoDB requests per operation, counted by store.RequestCounter against DynamoDB Local (every attempt; Scan never appears):\n\n")
	fmt.Println("| operation | requests | by API call | capacity units | note |")
	fmt.Println("| --- | ---: | --- | ---: | --- |")
	for _, r := range rows {
		ops := slices.Sorted(maps.Keys(r.counts.Requests))
		var parts []string
		for _, op := range ops {
			parts = append(parts, fmt.Sprintf("%s %d", op, r.counts.Requests[op]))
		}
		if r.counts.Requests["Scan"] > 0 {
			return fmt.Errorf("%s used Scan", r.name)
		}
		fmt.Printf("| %s | %d | %s | %.1f | %s |\n", r.name, r.counts.Total(), strings.Join(parts, ", "), r.counts.TotalCapacity(), r.note)
	}
	return nil
}

// fillChannel puts n members into channel with BatchWriteItem (25 items per
// request, 8 in parallel). The item is the one the store writes for a join,
// copied with the connection id replaced, and the store must then list all n
// members, so a change of the store's format fails the benchmark instead of
// measuring something else.
func fillChannel(ctx context.Context, client *dynamodb.Client, db *store.DynamoDB, table, channel string, n int) (time.Duration, error) {
	const proto = "proto-member-000000"
	if err := db.AddConnection(ctx, store.Connection{ID: proto, ConnectedAt: time.Now()}); err != nil {
		return 0, err
	}
	if _, err := db.Join(ctx, proto, channel); err != nil {
		return 0, err
	}
	out, err := client.Query(ctx, &dynamodb.QueryInput{
		TableName: aws.String(table), KeyConditionExpression: aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: "c#" + proto}},
	})
	if err != nil {
		return 0, err
	}
	var template map[string]types.AttributeValue
	for _, it := range out.Items {
		if s, ok := it["sk"].(*types.AttributeValueMemberS); ok && strings.Contains(s.Value, channel) {
			template = it
		}
	}
	if template == nil {
		return 0, errors.New("fill: the store's membership item was not found under pk c#<id>; the benchmark's fill needs updating")
	}
	if _, err := db.RemoveConnection(ctx, proto); err != nil {
		return 0, err
	}
	item := func(id string) map[string]types.AttributeValue {
		out := make(map[string]types.AttributeValue, len(template))
		for k, v := range template {
			if s, ok := v.(*types.AttributeValueMemberS); ok {
				v = &types.AttributeValueMemberS{Value: strings.ReplaceAll(s.Value, proto, id)}
			}
			out[k] = v
		}
		return out
	}
	start := time.Now()
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for lo := 0; lo < n; lo += 25 {
		hi := min(lo+25, n)
		g.Go(func() error {
			var reqs []types.WriteRequest
			for i := lo; i < hi; i++ {
				reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: item(fmt.Sprintf("big-%07d", i))}})
			}
			for attempt := 0; len(reqs) > 0; attempt++ {
				if attempt > 20 {
					return errors.New("fill: unprocessed items after 20 attempts")
				}
				out, err := client.BatchWriteItem(gctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{table: reqs}})
				if err != nil {
					return err
				}
				reqs = out.UnprocessedItems[table]
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return 0, err
	}
	took := time.Since(start)
	mu.Lock()
	defer mu.Unlock()
	got := 0
	if err := db.ChannelMembers(ctx, channel, func(ids []string) error { got += len(ids); return nil }); err != nil {
		return 0, err
	}
	if got != n {
		return 0, fmt.Errorf("fill: the store lists %d members of %d written; the benchmark's fill needs updating", got, n)
	}
	fmt.Fprintf(os.Stderr, "wsbench: %d members written with BatchWriteItem in %s\n", n, took.Round(time.Millisecond))
	return took, nil
}
