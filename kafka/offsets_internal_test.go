package kafka

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
)

// offsetsCluster starts two mock brokers: partitions 0, 1 and 3 of topic "t" are led by the
// first, partition 2 by the second. offsets answers the first broker's ListOffsets.
func offsetsCluster(t *testing.T, offsets sarama.MockResponse) (sarama.Client, *sarama.MockBroker, *sarama.MockBroker) {
	t.Helper()
	a, b := sarama.NewMockBroker(t, 1), sarama.NewMockBroker(t, 2)
	return offsetsClient(t, a, b, leaders(t, a, b, 1), offsets,
		sarama.NewMockOffsetResponse(t).SetOffset("t", 2, sarama.OffsetNewest, 2000).SetOffset("t", 2, sarama.OffsetOldest, 200))
}

// leaders is the metadata of offsetsCluster, with partition 1 led by broker one.
func leaders(t *testing.T, a, b *sarama.MockBroker, one int32) *sarama.MockMetadataResponse {
	return sarama.NewMockMetadataResponse(t).
		SetBroker(a.Addr(), a.BrokerID()).SetBroker(b.Addr(), b.BrokerID()).SetController(a.BrokerID()).
		SetLeader("t", 0, 1).SetLeader("t", 1, one).SetLeader("t", 2, 2).SetLeader("t", 3, 1)
}

// offsetsClient sets the brokers' handlers (both answer metadata with meta) and returns a
// client of them.
func offsetsClient(t *testing.T, a, b *sarama.MockBroker, meta, offsetsA, offsetsB sarama.MockResponse) (sarama.Client, *sarama.MockBroker, *sarama.MockBroker) {
	t.Helper()
	t.Cleanup(a.Close)
	t.Cleanup(b.Close)
	a.SetHandlerByMap(map[string]sarama.MockResponse{"MetadataRequest": meta, "OffsetRequest": offsetsA})
	b.SetHandlerByMap(map[string]sarama.MockResponse{"MetadataRequest": meta, "OffsetRequest": offsetsB})
	return mockClient(t, a, sarama.V2_8_0_0), a, b
}

// listOffsetRequests returns the ListOffsets requests a broker got, as the partitions each
// asked for (read from the answers: the mock answers every partition asked, and the
// request's own blocks are not exported).
func listOffsetRequests(mb *sarama.MockBroker) [][]int32 {
	var got [][]int32
	for _, rr := range mb.History() {
		if _, ok := rr.Request.(*sarama.OffsetRequest); ok {
			var parts []int32
			for p := range rr.Response.(*sarama.OffsetResponse).Blocks["t"] {
				parts = append(parts, p)
			}
			got = append(got, parts)
		}
	}
	return got
}

// TestOffsetsAtOneRequestPerLeader: the offsets of a topic's partitions take one ListOffsets
// request per leader, holding all of that leader's partitions, and each partition gets its
// own offset back, for either end of the log.
func TestOffsetsAtOneRequestPerLeader(t *testing.T) {
	client, a, b := offsetsCluster(t, sarama.NewMockOffsetResponse(t).
		SetOffset("t", 0, sarama.OffsetNewest, 1000).SetOffset("t", 1, sarama.OffsetNewest, 1001).SetOffset("t", 3, sarama.OffsetNewest, 1003).
		SetOffset("t", 0, sarama.OffsetOldest, 100).SetOffset("t", 1, sarama.OffsetOldest, 101).SetOffset("t", 3, sarama.OffsetOldest, 103))

	oldest, newest, err := offsetRanges(client, "t", []int32{0, 1, 2, 3})
	require.NoError(t, err)
	require.Equal(t, map[int32]int64{0: 100, 1: 101, 2: 200, 3: 103}, oldest)
	require.Equal(t, map[int32]int64{0: 1000, 1: 1001, 2: 2000, 3: 1003}, newest)

	reqA, reqB := listOffsetRequests(a), listOffsetRequests(b)
	require.Len(t, reqA, 2, "one request per leader and end of the log")
	require.Len(t, reqB, 2)
	for _, parts := range reqA {
		require.ElementsMatch(t, []int32{0, 1, 3}, parts)
	}
	for _, parts := range reqB {
		require.Equal(t, []int32{2}, parts)
	}
}

// TestOffsetsAtNamesTheFailedPartition: a partition's error fails the call and names it.
func TestOffsetsAtNamesTheFailedPartition(t *testing.T) {
	resp := &sarama.OffsetResponse{Version: 6}
	resp.AddTopicPartition("t", 0, 1000)
	resp.AddTopicPartition("t", 1, -1)
	resp.Blocks["t"][1].Err = sarama.ErrNotLeaderForPartition
	resp.AddTopicPartition("t", 3, 1003)
	client, _, _ := offsetsCluster(t, sarama.NewMockWrapper(resp))

	_, err := offsetsAt(client, "t", []int32{0, 1, 2, 3}, sarama.OffsetNewest)
	require.ErrorIs(t, err, sarama.ErrNotLeaderForPartition)
	require.ErrorContains(t, err, "t/1")

	// listOffsets keeps the others' offsets: a claim checks those partitions and skips 1.
	offsets, failed := listOffsets(client, "t", []int32{0, 1, 2, 3}, sarama.OffsetNewest)
	require.Equal(t, map[int32]int64{0: 1000, 2: 2000, 3: 1003}, offsets)
	require.Len(t, failed, 1)
	require.ErrorIs(t, failed[1], sarama.ErrNotLeaderForPartition)
}

// TestOffsetsAtAsksTheNewLeader: a partition whose leader answers that it no longer leads it
// is asked again, once, after a refresh of the topic's metadata, of the leader that refresh
// names (as GetOffset does), and the call succeeds.
func TestOffsetsAtAsksTheNewLeader(t *testing.T) {
	a, b := sarama.NewMockBroker(t, 1), sarama.NewMockBroker(t, 2)
	stale := &sarama.OffsetResponse{Version: 6}
	stale.AddTopicPartition("t", 0, 1000)
	stale.AddTopicPartition("t", 1, -1)
	stale.Blocks["t"][1].Err = sarama.ErrNotLeaderForPartition
	stale.AddTopicPartition("t", 3, 1003)
	// The client's first metadata names broker 1 as partition 1's leader, the refresh broker 2.
	meta := sarama.NewMockSequence(leaders(t, a, b, 1), leaders(t, a, b, 2))
	client, _, _ := offsetsClient(t, a, b, meta, sarama.NewMockWrapper(stale),
		sarama.NewMockOffsetResponse(t).SetOffset("t", 1, sarama.OffsetNewest, 1001).SetOffset("t", 2, sarama.OffsetNewest, 2000))

	got, err := offsetsAt(client, "t", []int32{0, 1, 2, 3}, sarama.OffsetNewest)
	require.NoError(t, err)
	require.Equal(t, map[int32]int64{0: 1000, 1: 1001, 2: 2000, 3: 1003}, got)
	require.Equal(t, [][]int32{{2}, {1}}, listOffsetRequests(b), "broker 2: its own partition, then partition 1 once the refresh named it")
}

// TestOffsetsAtLeaderlessPartitions: partitions without a leader fail with
// LEADER_NOT_AVAILABLE at the cost of one metadata refresh for the whole call, not one per
// partition (sarama's Leader refreshes on every miss), and the others get their offsets.
func TestOffsetsAtLeaderlessPartitions(t *testing.T) {
	a, b := sarama.NewMockBroker(t, 1), sarama.NewMockBroker(t, 2)
	meta := &sarama.MetadataResponse{Version: 11} // as sarama asks with V2_8_0_0
	meta.AddBroker(a.Addr(), a.BrokerID())
	meta.AddBroker(b.Addr(), b.BrokerID())
	meta.ControllerID = a.BrokerID()
	for p := range int32(6) {
		if p%2 == 1 {
			meta.AddTopicPartition("t", p, -1, []int32{1}, nil, []int32{1}, sarama.ErrLeaderNotAvailable)
		} else {
			meta.AddTopicPartition("t", p, 1, []int32{1}, []int32{1}, nil, sarama.ErrNoError)
		}
	}
	client, _, _ := offsetsClient(t, a, b, sarama.NewMockWrapper(meta),
		sarama.NewMockOffsetResponse(t).SetOffset("t", 0, sarama.OffsetNewest, 1000).SetOffset("t", 2, sarama.OffsetNewest, 1002).SetOffset("t", 4, sarama.OffsetNewest, 1004),
		sarama.NewMockOffsetResponse(t))
	before := metadataRequests(a, b)

	offsets, failed := listOffsets(client, "t", []int32{0, 1, 2, 3, 4, 5}, sarama.OffsetNewest)
	require.Equal(t, map[int32]int64{0: 1000, 2: 1002, 4: 1004}, offsets)
	require.Len(t, failed, 3)
	for _, p := range []int32{1, 3, 5} {
		require.ErrorIs(t, failed[p], sarama.ErrLeaderNotAvailable)
	}
	require.Equal(t, 1, metadataRequests(a, b)-before, "one refresh for the call")
}

// metadataRequests counts the Metadata requests the brokers got.
func metadataRequests(mbs ...*sarama.MockBroker) int {
	n := 0
	for _, mb := range mbs {
		for _, rr := range mb.History() {
			if _, ok := rr.Request.(*sarama.MetadataRequest); ok {
				n++
			}
		}
	}
	return n
}

// groupSession is a consumer group session of a member that claimed claims.
type groupSession struct {
	sarama.ConsumerGroupSession
	claims map[string][]int32
}

func (s groupSession) MemberID() string           { return "m" }
func (s groupSession) Claims() map[string][]int32 { return s.claims }

// TestGroupCommitsReportsCoordinatorErrors: an error of the coordinator for the group or for
// a partition (offsets still loading after a coordinator failover, not the coordinator any
// more) is an error of groupCommits, naming the group and the partition, with either version
// of the offset fetch (v8 reports the group's error per group). It used to read as "nothing
// committed": an Exchange's Setup then registered every partition without its checkpoint
// while sarama resumed the claim at the committed offset, so the repartition counted the
// upstream's replayed records twice and its operators started cold. An Exchange's Setup now
// fails the session (Run joins again after a backoff) without stopping the Source, and a
// coordinator that moved is looked up again.
func TestGroupCommitsReportsCoordinatorErrors(t *testing.T) {
	for _, version := range []sarama.KafkaVersion{sarama.V2_8_0_0, sarama.V3_0_0_0} {
		for _, tc := range []struct {
			name  string
			fetch *sarama.MockOffsetFetchResponse
			err   sarama.KError
			part  bool
		}{
			{"group error", sarama.NewMockOffsetFetchResponse(t).SetError(sarama.ErrOffsetsLoadInProgress), sarama.ErrOffsetsLoadInProgress, false},
			{"moved coordinator", sarama.NewMockOffsetFetchResponse(t).SetError(sarama.ErrNotCoordinatorForConsumer), sarama.ErrNotCoordinatorForConsumer, false},
			{"partition error", sarama.NewMockOffsetFetchResponse(t).
				SetOffset("g", "t", 0, 7, "cp", sarama.ErrNoError).
				SetOffset("g", "t", 1, -1, "", sarama.ErrOffsetsLoadInProgress), sarama.ErrOffsetsLoadInProgress, true},
			{"no error", sarama.NewMockOffsetFetchResponse(t).
				SetOffset("g", "t", 0, 7, "cp", sarama.ErrNoError).
				SetOffset("g", "t", 1, -1, "", sarama.ErrNoError), sarama.ErrNoError, false},
		} {
			t.Run(version.String()+"/"+tc.name, func(t *testing.T) {
				b := sarama.NewMockBroker(t, 1)
				t.Cleanup(b.Close)
				b.SetHandlerByMap(map[string]sarama.MockResponse{
					"MetadataRequest":        sarama.NewMockMetadataResponse(t).SetBroker(b.Addr(), b.BrokerID()).SetController(b.BrokerID()).SetLeader("t", 0, 1).SetLeader("t", 1, 1),
					"FindCoordinatorRequest": sarama.NewMockFindCoordinatorResponse(t).SetCoordinator(sarama.CoordinatorGroup, "g", b),
					"OffsetFetchRequest":     tc.fetch,
				})
				client := mockClient(t, b, version)
				claims := map[string][]int32{"t": {0, 1}}

				commits, err := groupCommits(client, "g", claims)
				if tc.err == sarama.ErrNoError {
					require.NoError(t, err)
					require.Equal(t, map[topicPart]stream.Position{{"t", 0}: {Partition: 0, Offset: 7, Meta: "cp"}}, commits)
					return
				}
				require.ErrorIs(t, err, tc.err, "an error of the coordinator reads as 'nothing committed'")
				require.ErrorContains(t, err, `group "g"`)
				if tc.part {
					require.ErrorContains(t, err, "t/1")
				}
				finds := 0
				for _, rr := range b.History() {
					if _, ok := rr.Request.(*sarama.FindCoordinatorRequest); ok {
						finds++
					}
				}
				if tc.err == sarama.ErrNotCoordinatorForConsumer {
					require.Equal(t, 2, finds, "the coordinator is looked up again")
				} else {
					require.Equal(t, 1, finds)
				}

				ex, err := NewExchange(Config{Brokers: []string{b.Addr()}, Group: "g", Topics: []string{"in"}}, "p", "x", stream.JSONCodec[int]())
				require.NoError(t, err)
				h := &handler[stream.Shuffled[int]]{s: ex.src, client: client}
				require.ErrorIs(t, h.Setup(groupSession{claims: claims}), tc.err, "the session fails")
				require.Nil(t, ex.src.fatal.Load(), "the Source goes on: Run joins again")
			})
		}
	}
}

type refusedRecord struct{ refused bool }

func (r refusedRecord) Error() string       { return "refused" }
func (r refusedRecord) InvalidRecord() bool { return r.refused }

// TestIsInvalid: a Decode error is a validation failure (dead-lettered "invalid", not
// "decode") when it wraps an InvalidError or an error whose InvalidRecord says so, such as
// telemetry.Decode's for telemetry.ErrInvalid: a codec that returned that error as it is had
// its invalid records dead-lettered as undecodable (a reviewer's finding; the README's codec
// does so).
func TestIsInvalid(t *testing.T) {
	require.True(t, isInvalid(&InvalidError{Err: errors.New("x")}))
	require.True(t, isInvalid(fmt.Errorf("decoding: %w", &InvalidError{Err: errors.New("x")})))
	require.True(t, isInvalid(refusedRecord{true}))
	require.True(t, isInvalid(fmt.Errorf("decoding: %w", refusedRecord{true})))
	require.False(t, isInvalid(refusedRecord{false}))
	require.False(t, isInvalid(errors.New("malformed")))
}

// TestOffsetsAtWaitsForLeadership: a broker that has just restarted answers
// NOT_LEADER_OR_FOLLOWER for a partition for a while; offsetsAtPatiently (a bounded run's
// start) asks again, after a backoff, up to the client's Metadata.Retry.Max times, and
// succeeds once the partition is led. Before, it gave up after one refresh, and a bounded run
// started right after a broker restart stopped at once (helper-70). It stops waiting when its
// context ends; offsetsAt, for callers that must not wait, fails at once as before.
func TestOffsetsAtWaitsForLeadership(t *testing.T) {
	a, b := sarama.NewMockBroker(t, 1), sarama.NewMockBroker(t, 2)
	loading := &sarama.OffsetResponse{Version: 6}
	loading.AddTopicPartition("t", 0, 1000)
	loading.AddTopicPartition("t", 1, -1)
	loading.Blocks["t"][1].Err = sarama.ErrNotLeaderForPartition
	loading.AddTopicPartition("t", 3, 1003)
	led := sarama.NewMockOffsetResponse(t).SetOffset("t", 0, sarama.OffsetNewest, 1000).
		SetOffset("t", 1, sarama.OffsetNewest, 1001).SetOffset("t", 3, sarama.OffsetNewest, 1003)
	// Four answers without partition 1's offset: the first request, its retry after the
	// refresh, and two more rounds; then it is led.
	offsetsA := sarama.NewMockSequence(sarama.NewMockWrapper(loading), sarama.NewMockWrapper(loading),
		sarama.NewMockWrapper(loading), sarama.NewMockWrapper(loading), led)
	client, _, _ := offsetsClient(t, a, b, leaders(t, a, b, 1), offsetsA,
		sarama.NewMockOffsetResponse(t).SetOffset("t", 2, sarama.OffsetNewest, 2000))
	client.Config().Metadata.Retry.Max = 5
	client.Config().Metadata.Retry.Backoff = time.Millisecond

	got, err := offsetsAtPatiently(t.Context(), client, "t", []int32{0, 1, 2, 3}, sarama.OffsetNewest)
	require.NoError(t, err)
	require.Equal(t, map[int32]int64{0: 1000, 1: 1001, 2: 2000, 3: 1003}, got)

	// Still not led: offsetsAt fails at once (the request and its one retry after a
	// refresh), offsetsAtPatiently stops waiting when its context ends.
	a.SetHandlerByMap(map[string]sarama.MockResponse{"MetadataRequest": leaders(t, a, b, 1), "OffsetRequest": sarama.NewMockWrapper(loading)})
	before := len(listOffsetRequests(a))
	_, err = offsetsAt(client, "t", []int32{1}, sarama.OffsetNewest)
	require.ErrorIs(t, err, sarama.ErrNotLeaderForPartition)
	require.Equal(t, 2, len(listOffsetRequests(a))-before, "the request and its one retry after a refresh")

	client.Config().Metadata.Retry.Max = 1000
	client.Config().Metadata.Retry.Backoff = time.Hour
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = offsetsAtPatiently(ctx, client, "t", []int32{1}, sarama.OffsetNewest)
	require.ErrorIs(t, err, sarama.ErrNotLeaderForPartition, "given up at once: its context ended")
}
