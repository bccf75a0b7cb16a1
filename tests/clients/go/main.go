// Command dgwscenario is a Go client of dynamo-gateway generated from protos/ (see buf.gen.yaml).
//
// It runs the cross-language scenario against a running gateway: put, get, a paginated
// query, a ParallelScan stream and a conditional failure whose google.rpc.Status details
// (ErrorInfo, ConditionalCheckFailure) it decodes. It prints one JSON summary line and
// exits non-zero, naming the step, when anything differs from what the contracts promise.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	pb "dgwscenario/gen/dynamo_gateway/v1"
)

const lines = 25

func s(v string) *pb.AttributeValue { return &pb.AttributeValue{Value: &pb.AttributeValue_S{S: v}} }
func n(v string) *pb.AttributeValue { return &pb.AttributeValue{Value: &pb.AttributeValue_N{N: v}} }

func fail(step string, format string, args ...any) {
	fmt.Fprintf(os.Stderr, "scenario failed at %s: %s\n", step, fmt.Sprintf(format, args...))
	os.Exit(1)
}

func main() {
	target := flag.String("target", "127.0.0.1:50051", "gateway address")
	table := flag.String("table", "app", "table with a pk/sk string key")
	partition := flag.String("pk", "go#orders", "partition key the scenario owns")
	flag.Parse()

	conn, err := grpc.NewClient(*target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fail("connect", "%v", err)
	}
	defer conn.Close()
	client := pb.NewDynamoDBServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// put: every line of one order, with a number, a string set and binary.
	for i := 0; i < lines; i++ {
		item := map[string]*pb.AttributeValue{
			"pk":   s(*partition),
			"sk":   s(fmt.Sprintf("line#%02d", i)),
			"qty":  n(fmt.Sprint(i)),
			"tags": {Value: &pb.AttributeValue_Ss{Ss: &pb.StringSet{Values: []string{"go", "grpc"}}}},
			"blob": {Value: &pb.AttributeValue_B{B: []byte{0, byte(i), 255}}},
		}
		if _, err := client.PutItem(ctx, &pb.PutItemRequest{TableName: *table, Item: item}); err != nil {
			fail("put", "%v", err)
		}
	}

	// get: typed values come back as written.
	got, err := client.GetItem(ctx, &pb.GetItemRequest{
		TableName: *table, Key: map[string]*pb.AttributeValue{"pk": s(*partition), "sk": s("line#07")}, ConsistentRead: true,
	})
	if err != nil {
		fail("get", "%v", err)
	}
	if !got.GetFound() || got.Item["qty"].GetN() != "7" || string(got.Item["blob"].GetB()) != string([]byte{0, 7, 255}) {
		fail("get", "unexpected item %v", got.Item)
	}
	tags := append([]string(nil), got.Item["tags"].GetSs().GetValues()...)
	sort.Strings(tags)
	if fmt.Sprint(tags) != "[go grpc]" {
		fail("get", "string set %v", tags)
	}

	// query with pagination: pages of 10 until last_evaluated_key is empty.
	var queried []string
	pages := 0
	var start map[string]*pb.AttributeValue
	for {
		page, err := client.Query(ctx, &pb.QueryRequest{
			TableName:                 *table,
			KeyConditionExpression:    "pk = :pk",
			ExpressionAttributeValues: map[string]*pb.AttributeValue{":pk": s(*partition)},
			Limit:                     10,
			ExclusiveStartKey:         start,
		})
		if err != nil {
			fail("query", "%v", err)
		}
		pages++
		for _, item := range page.Items {
			queried = append(queried, item.Attributes["sk"].GetS())
		}
		if len(page.LastEvaluatedKey) == 0 {
			break
		}
		start = page.LastEvaluatedKey
	}
	if len(queried) != lines || queried[0] != "line#00" || queried[lines-1] != fmt.Sprintf("line#%02d", lines-1) {
		fail("query", "items %v", queried)
	}

	// parallel scan: one stream, pages of every segment, each segment ends with segment_done.
	stream, err := client.ParallelScan(ctx, &pb.ParallelScanRequest{
		TableName: *table, TotalSegments: 4, PageLimit: 5,
		FilterExpression:          "pk = :pk",
		ExpressionAttributeValues: map[string]*pb.AttributeValue{":pk": s(*partition)},
	})
	if err != nil {
		fail("parallel scan", "%v", err)
	}
	scanned := map[string]bool{}
	done := map[int32]bool{}
	messages := 0
	for {
		page, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			fail("parallel scan", "%v", err)
		}
		messages++
		for _, item := range page.Items {
			scanned[item.Attributes["sk"].GetS()] = true
		}
		if page.SegmentDone {
			done[page.Segment] = true
		}
	}
	if len(scanned) != lines || len(done) != 4 {
		fail("parallel scan", "%d items, segments done %v", len(scanned), done)
	}

	// conditional failure: FAILED_PRECONDITION with ErrorInfo and the old item decoded.
	_, err = client.PutItem(ctx, &pb.PutItemRequest{
		TableName:                           *table,
		Item:                                map[string]*pb.AttributeValue{"pk": s(*partition), "sk": s("line#03")},
		ConditionExpression:                 "attribute_not_exists(pk)",
		ReturnValuesOnConditionCheckFailure: pb.ReturnValuesOnConditionCheckFailure_RETURN_VALUES_ON_CONDITION_CHECK_FAILURE_ALL_OLD,
	})
	st, ok := status.FromError(err)
	if err == nil || !ok || st.Code() != codes.FailedPrecondition {
		fail("condition", "want FAILED_PRECONDITION, got %v", err)
	}
	var reason, awsCode, oldQty string
	for _, detail := range st.Details() {
		switch d := detail.(type) {
		case *errdetails.ErrorInfo:
			reason, awsCode = d.GetReason(), d.GetMetadata()["aws_error_code"]
		case *pb.ConditionalCheckFailure:
			oldQty = d.GetItem()["qty"].GetN()
		}
	}
	if reason != "ConditionalCheck.ConditionFailed" || awsCode != "ConditionalCheckFailedException" || oldQty != "3" {
		fail("condition", "details: reason %q, aws_error_code %q, old qty %q", reason, awsCode, oldQty)
	}

	summary, _ := json.Marshal(map[string]any{
		"language": "go", "put": lines, "query_items": len(queried), "query_pages": pages,
		"scan_items": len(scanned), "scan_messages": messages, "segments_done": len(done),
		"error_reason": reason, "aws_error_code": awsCode, "old_item_qty": oldQty, "status_message": st.Message(),
	})
	fmt.Println(string(summary))
}
