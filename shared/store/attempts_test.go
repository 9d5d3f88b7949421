package store

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/hookgate/hookgate/shared/apierr"
)

// attempt claims attempt a.Number of dlv_1's series a.Series and records it with status (and
// next, for a retry).
func attempt(t *testing.T, st *Store, a Attempt, status string, next *time.Time) {
	t.Helper()
	ctx := context.Background()
	if _, ok, err := st.ClaimAttempt(ctx, "ws", "dlv_1", a.Number, time.Minute); !ok || err != nil {
		t.Fatalf("claim %d/%d: %v %v", a.Series, a.Number, ok, err)
	}
	if err := st.RecordAttempt(ctx, "ws", "dlv_1", a, status, next); err != nil {
		t.Fatalf("record %d/%d: %v", a.Series, a.Number, err)
	}
}

// partition returns the sort keys of the items in dlv_1's partition.
func partition(t *testing.T, st *Store) []string {
	t.Helper()
	out, err := st.db.Query(context.Background(), &dynamodb.QueryInput{
		TableName: &st.table, KeyConditionExpression: aws.String("pk = :pk"), ConsistentRead: aws.Bool(true),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": s("WS#ws#DLV#dlv_1")},
	})
	if err != nil {
		t.Fatal(err)
	}
	var sks []string
	for _, it := range out.Items {
		sks = append(sks, str(it, "sk"))
	}
	return sks
}

// wantAttempts fails unless dlv_1's attempt log is want, in order, each field as recorded.
func wantAttempts(t *testing.T, st *Store, want ...Attempt) {
	t.Helper()
	_, got, err := st.DeliveryAttempts(context.Background(), "ws", "dlv_1")
	if err != nil {
		t.Fatal(err)
	}
	same := len(got) == len(want)
	for i := 0; same && i < len(got); i++ {
		g, w := got[i], want[i]
		same = g.At.Equal(w.At) && g.Series == w.Series && g.Number == w.Number && g.StatusCode == w.StatusCode &&
			g.LatencyMS == w.LatencyMS && g.ResponseSnippet == w.ResponseSnippet && g.Error == w.Error
	}
	if !same {
		t.Fatalf("attempt log\n got  %+v\n want %+v", got, want)
	}
}

// The attempt that ends a delivery is written on the delivery's item by the update that ends it:
// a successful first attempt leaves no attempt item, and is listed with every field.
func TestFinalAttemptIsKeptOnTheDelivery(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	createDelivery(t, st)
	at := time.Date(2026, 11, 25, 10, 0, 0, 123456789, time.UTC)
	ok := Attempt{At: at, StatusCode: 204, LatencyMS: 41, ResponseSnippet: "thanks"}
	attempt(t, st, ok, DeliverySucceeded, nil)
	if sks := partition(t, st); len(sks) != 1 || sks[0] != "DLV" {
		t.Fatalf("items of the delivery: %v, want only its own", sks)
	}
	wantAttempts(t, st, ok)
	d, err := st.GetDelivery(context.Background(), "ws", "dlv_1")
	if err != nil || d.Status != DeliverySucceeded || d.Attempts != 1 || d.TotalAttempts != 1 || d.LastStatusCode != 204 || d.LastError != "" {
		t.Fatalf("delivery: %+v %v", d, err)
	}
}

// A delivery's log after retries: the attempts followed by another keep items of their own, the
// last is on the delivery; every attempt is listed once, oldest first, whether the delivery ends
// succeeded or failed.
func TestAttemptLogAfterRetries(t *testing.T) {
	t.Parallel()
	base := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	for _, end := range []string{DeliverySucceeded, DeliveryFailed} {
		t.Run(end, func(t *testing.T) {
			t.Parallel()
			st := newStore(t)
			createDelivery(t, st)
			next := base.Add(time.Hour)
			first := Attempt{At: base, Number: 0, StatusCode: 500, LatencyMS: 12, ResponseSnippet: "oops"}
			second := Attempt{At: base.Add(time.Minute), Number: 1, LatencyMS: 15000, Error: "timeout"}
			last := Attempt{At: base.Add(2 * time.Minute), Number: 2, StatusCode: 200, LatencyMS: 30}
			if end == DeliveryFailed {
				last.StatusCode, last.Error = 503, ""
			}
			attempt(t, st, first, DeliveryPending, &next)
			attempt(t, st, second, DeliveryPending, &next)
			attempt(t, st, last, end, nil)
			if sks := partition(t, st); strings.Join(sks, " ") != "ATT#0000#0000 ATT#0000#0001 DLV" {
				t.Fatalf("items of the delivery: %v", sks)
			}
			wantAttempts(t, st, first, second, last)
		})
	}
}

// A manual retry starts a new series: the final attempt of the series before is kept as an item
// of its own, and the log shows both series, each attempt once.
func TestAttemptLogAfterAManualRetry(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ctx := context.Background()
	createDelivery(t, st)
	base := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	next := base.Add(time.Hour)
	a0 := Attempt{At: base, Number: 0, StatusCode: 500, LatencyMS: 9}
	a1 := Attempt{At: base.Add(time.Minute), Number: 1, StatusCode: 502, LatencyMS: 8, ResponseSnippet: "bad gateway", Error: ""}
	attempt(t, st, a0, DeliveryPending, &next)
	attempt(t, st, a1, DeliveryFailed, nil)
	wantAttempts(t, st, a0, a1)
	if _, err := st.RetryDeliveryOnce(ctx, "ws", "dlv_1"); err != nil {
		t.Fatal(err)
	}
	if sks := partition(t, st); strings.Join(sks, " ") != "ATT#0000#0000 ATT#0000#0001 DLV" {
		t.Fatalf("after the retry, items of the delivery: %v", sks)
	}
	wantAttempts(t, st, a0, a1)
	r0 := Attempt{At: base.Add(time.Hour), Series: 1, Number: 0, StatusCode: 500, LatencyMS: 7}
	attempt(t, st, r0, DeliveryFailed, nil)
	wantAttempts(t, st, a0, a1, r0)
	// A replay of the failed series 1: series 2 succeeds.
	if _, err := st.RetryDelivery(ctx, "ws", "dlv_1"); err != nil {
		t.Fatal(err)
	}
	r1 := Attempt{At: base.Add(2 * time.Hour), Series: 2, Number: 0, StatusCode: 200, LatencyMS: 5}
	attempt(t, st, r1, DeliverySucceeded, nil)
	wantAttempts(t, st, a0, a1, r0, r1)
	d, _ := st.GetDelivery(ctx, "ws", "dlv_1")
	if d.TotalAttempts != 4 || d.Series != 2 || d.Status != DeliverySucceeded {
		t.Fatalf("delivery: %+v", d)
	}
}

// A retry that dies after it kept the final attempt and before it moved the delivery on leaves the
// attempt twice (its item and on the delivery): the log shows it once, and the next retry keeps it
// again (the same item) and goes on.
func TestRetryThatDiedAfterKeepingTheFinalAttempt(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ctx := context.Background()
	createDelivery(t, st)
	a0 := Attempt{At: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC), StatusCode: 500, LatencyMS: 3}
	attempt(t, st, a0, DeliveryFailed, nil)
	cur, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &st.table, Key: deliveryKey("ws", "dlv_1"), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	fa, ok := finalAttempt(cur.Item)
	if !ok {
		t.Fatal("no final attempt on the delivery")
	}
	kept := attemptItem("ws", "dlv_1", fa, str(cur.Item, "last_rec"), time.Now().Add(DeliveryRetention))
	if _, err := st.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &st.table, Item: kept}); err != nil {
		t.Fatal(err)
	}
	wantAttempts(t, st, a0)
	if _, err := st.RetryDelivery(ctx, "ws", "dlv_1"); err != nil {
		t.Fatal(err)
	}
	wantAttempts(t, st, a0)
}

// A call that died after writing its attempt item, before moving the delivery, then the attempt
// claimed again and recorded as the last: the delivery's own record is listed, not the dead
// call's; a manual retry then keeps the recorded attempt, in place of the dead call's item.
func TestDeadCallsItemGivesWayToTheFinalAttempt(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ctx := context.Background()
	createDelivery(t, st)
	dead := attemptItem("ws", "dlv_1", Attempt{At: time.Now(), StatusCode: 500}, "dead-call", time.Now().Add(DeliveryRetention))
	if _, err := st.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &st.table, Item: dead}); err != nil {
		t.Fatal(err)
	}
	a0 := Attempt{At: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC), StatusCode: 404, LatencyMS: 6}
	attempt(t, st, a0, DeliveryFailed, nil)
	wantAttempts(t, st, a0)
	if _, err := st.RetryDeliveryOnce(ctx, "ws", "dlv_1"); err != nil {
		t.Fatal(err)
	}
	wantAttempts(t, st, a0)
}

// The final attempt's record sent again by the SDK after DynamoDB applied it (the first answer
// lost) is the same call's: accepted, counted once. A late duplicate (another call for the same
// attempt) gets Conflict and changes nothing: not the delivery, not its logged attempt.
func TestFinalRecordResentAndLateDuplicate(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ctx := context.Background()
	createDelivery(t, st)
	if _, ok, err := st.ClaimAttempt(ctx, "ws", "dlv_1", 0, time.Minute); !ok || err != nil {
		t.Fatalf("claim: %v %v", ok, err)
	}
	a := Attempt{At: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC), StatusCode: 200, LatencyMS: 20}
	for i := range 2 {
		if err := st.recordAttempt(ctx, "ws", "dlv_1", a, DeliverySucceeded, nil, nil, "call-1"); err != nil {
			t.Fatalf("send %d: %v", i+1, err)
		}
	}
	before, _ := st.GetDelivery(ctx, "ws", "dlv_1")
	late := Attempt{At: a.At.Add(time.Minute), StatusCode: 500, LatencyMS: 99, Error: "late"}
	for _, status := range []string{DeliverySucceeded, DeliveryFailed} {
		if err := st.recordAttempt(ctx, "ws", "dlv_1", late, status, nil, nil, "call-2"); apierr.CodeOf(err) != apierr.Conflict {
			t.Fatalf("a late duplicate (%s): %v", status, err)
		}
	}
	after, err := st.GetDelivery(ctx, "ws", "dlv_1")
	if err != nil || after.TotalAttempts != 1 || after.Attempts != 1 || after.Status != DeliverySucceeded || !after.UpdatedAt.Equal(before.UpdatedAt) || after.LastStatusCode != 200 {
		t.Fatalf("after a resend and a late duplicate: %+v %v", after, err)
	}
	wantAttempts(t, st, a)
	// And a duplicate message of the ended delivery claims nothing.
	if _, ok, err := st.ClaimAttempt(ctx, "ws", "dlv_1", 0, time.Minute); ok || err != nil {
		t.Fatalf("a duplicate claimed an ended delivery: %v %v", ok, err)
	}
}

// A response snippet is kept to 1 KiB, cut at a rune, on the delivery's item and on an attempt's.
func TestResponseSnippetIsBounded(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	createDelivery(t, st)
	long := "a" + strings.Repeat("é", 1500) // the 1 KiB cut falls inside a rune
	next := time.Now().Add(time.Hour)
	attempt(t, st, Attempt{At: time.Now(), StatusCode: 500, ResponseSnippet: long}, DeliveryPending, &next)
	attempt(t, st, Attempt{At: time.Now(), Number: 1, StatusCode: 500, ResponseSnippet: long}, DeliveryFailed, nil)
	_, atts, err := st.DeliveryAttempts(context.Background(), "ws", "dlv_1")
	if err != nil || len(atts) != 2 {
		t.Fatalf("attempts: %+v %v", atts, err)
	}
	for _, a := range atts {
		if got := a.ResponseSnippet; len(got) != maxResponseSnippet-1 || !utf8.ValidString(got) || !strings.HasPrefix(long, got) {
			t.Errorf("attempt %d keeps %d bytes (valid %v) of the response, want %d", a.Number, len(got), utf8.ValidString(got), maxResponseSnippet-1)
		}
	}
}

// hookDB runs hook once, right after the first GetItem of a delivery item (sk DLV) answers.
type hookDB struct {
	DB
	once sync.Once
	hook func()
}

func (d *hookDB) GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	out, err := d.DB.GetItem(ctx, in, opts...)
	if str(in.Key, "sk") == "DLV" {
		d.once.Do(d.hook)
	}
	return out, err
}

// A retry that read the delivery, then another retry came between and its series failed too: the
// first retry's update is refused (the series moved on), it reads again and keeps the final
// attempt of the series in between before it starts its own. No attempt is lost.
func TestRetryRacedByAnotherKeepsEveryFinalAttempt(t *testing.T) {
	t.Parallel()
	plain := newStore(t)
	ctx := context.Background()
	createDelivery(t, plain)
	a0 := Attempt{At: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC), StatusCode: 500, LatencyMS: 1}
	attempt(t, plain, a0, DeliveryFailed, nil)
	between := Attempt{At: a0.At.Add(time.Hour), Series: 1, StatusCode: 503, LatencyMS: 2}
	db := &hookDB{DB: plain.db, hook: func() {
		if _, err := plain.RetryDeliveryOnce(ctx, "ws", "dlv_1"); err != nil {
			t.Errorf("the retry in between: %v", err)
		}
		attempt(t, plain, between, DeliveryFailed, nil)
	}}
	raced := New(db, plain.table, time.Now)
	d, err := raced.RetryDelivery(ctx, "ws", "dlv_1")
	if err != nil || d.Series != 2 || d.Status != DeliveryPending {
		t.Fatalf("the raced retry: %+v %v", d, err)
	}
	wantAttempts(t, plain, a0, between)
}
