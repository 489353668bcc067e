package kafka

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/stream"
)

// TestExchangeOwnerCheckCost: an Exchange's Open checks that no other consumer group has
// committed offsets of its topic (ErrRepartitionInUse) without listing and fetching the
// offsets of every group of the cluster each time. It listed every group (thousands on a
// shared cluster) and fetched each one's offsets, one coordinator lookup and one fetch after
// the other, at every Open: now a topic this Open created has no other group's offsets, a
// topic of which the pipeline's own group has committed offsets was checked when the group
// first opened it (another group that came later was refused then), and a scan fetches only
// consumer groups' offsets (not Kafka Connect's, say). The groups whose offsets it may not
// read (ACLs) make one warning that names them and what to grant, not one each.
func TestExchangeOwnerCheckCost(t *testing.T) {
	const topic = "p-x-repartition"
	for _, tc := range []struct {
		name    string
		exists  bool // the topic exists before Open
		fetch   *sarama.MockOffsetFetchResponse
		groups  map[string]string // the cluster's groups and their protocol types
		inUse   string            // the group the error names; "" for none
		listed  bool              // the groups are listed
		fetched []string          // the groups whose offsets are fetched, besides g's own
		warned  string            // what the one warning names
	}{
		{name: "created now", exists: false, fetch: sarama.NewMockOffsetFetchResponse(t).SetOffset("other", topic, 0, 3, "", sarama.ErrNoError),
			groups: map[string]string{"g": "consumer", "other": "consumer"}},
		{name: "owned", exists: true, fetch: sarama.NewMockOffsetFetchResponse(t).SetOffset("g", topic, 1, 3, "", sarama.ErrNoError),
			groups: map[string]string{"g": "consumer", "other": "consumer"}},
		{name: "in use", exists: true, fetch: sarama.NewMockOffsetFetchResponse(t).
			SetOffset("other", topic, 1, 3, "", sarama.ErrNoError).
			SetOffset("worker", topic, 1, 3, "", sarama.ErrNoError),
			groups: map[string]string{"g": "consumer", "idle": "consumer", "other": "consumer", "worker": "connect", "simple": ""},
			inUse:  "other", listed: true, fetched: []string{"idle", "other", "simple"}},
		{name: "refused", exists: true, fetch: sarama.NewMockOffsetFetchResponse(t).
			SetOffset("r1", topic, 0, -1, "", sarama.ErrGroupAuthorizationFailed).
			SetOffset("r2", topic, 0, -1, "", sarama.ErrGroupAuthorizationFailed),
			groups: map[string]string{"g": "consumer", "r1": "consumer", "r2": "consumer", "idle": "consumer"},
			listed: true, fetched: []string{"idle", "r1", "r2"}, warned: `groups=2 names="[r1 r2]"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := sarama.NewMockBroker(t, 1)
			t.Cleanup(b.Close)
			find := sarama.NewMockFindCoordinatorResponse(t)
			list := sarama.NewMockListGroupsResponse(t)
			for g, typ := range tc.groups {
				find.SetCoordinator(sarama.CoordinatorGroup, g, b)
				list.AddGroup(g, typ)
			}
			create := &sarama.CreateTopicsResponse{Version: 7, TopicErrors: map[string]*sarama.TopicError{topic: {Err: sarama.ErrNoError}},
				TopicResults: map[string]*sarama.CreatableTopicResult{topic: {NumPartitions: 2, ReplicationFactor: 1}}}
			if tc.exists {
				create.TopicErrors[topic].Err = sarama.ErrTopicAlreadyExists
			}
			b.SetHandlerByMap(map[string]sarama.MockResponse{
				"MetadataRequest": sarama.NewMockMetadataResponse(t).SetBroker(b.Addr(), b.BrokerID()).SetController(b.BrokerID()).
					SetLeader("in", 0, b.BrokerID()).SetLeader(topic, 0, b.BrokerID()).SetLeader(topic, 1, b.BrokerID()),
				"CreateTopicsRequest":    sarama.NewMockWrapper(create),
				"FindCoordinatorRequest": find,
				"ListGroupsRequest":      list,
				"OffsetFetchRequest":     tc.fetch,
			})
			var logs bytes.Buffer
			ex, err := NewExchange(Config{Brokers: []string{b.Addr()}, Group: "g", Topics: []string{"in"}}, "p", "x", stream.JSONCodec[int](),
				WithPartitions(2), WithReplication(1), WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
			require.NoError(t, err)
			sc, err := ex.producerConfig()
			require.NoError(t, err)
			sc.ApiVersionsRequest = false // the mock answers only what the test sets
			sc.Metadata.Retry.Max = 0
			sc.Version = sarama.V2_8_0_0
			client, err := sarama.NewClient([]string{b.Addr()}, sc)
			require.NoError(t, err)
			t.Cleanup(func() { _ = client.Close() })

			n, err := ex.ensure(t.Context(), client, sc)
			if tc.inUse != "" {
				require.ErrorIs(t, err, ErrRepartitionInUse)
				require.ErrorContains(t, err, `consumer group "`+tc.inUse+`"`)
			} else {
				require.NoError(t, err)
				require.Equal(t, 2, n)
			}

			listed := false
			var fetched []string
			for _, rr := range b.History() {
				switch r := rr.Request.(type) {
				case *sarama.ListGroupsRequest:
					listed = true
				case *sarama.OffsetFetchRequest:
					if r.ConsumerGroup != "g" {
						fetched = append(fetched, r.ConsumerGroup)
					}
				}
			}
			require.Equal(t, tc.listed, listed, "the cluster's groups were listed")
			if tc.inUse == "" {
				require.ElementsMatch(t, tc.fetched, fetched, "the groups whose offsets were fetched")
			} else {
				require.Subset(t, tc.fetched, fetched, "the groups whose offsets were fetched")
				require.Contains(t, fetched, tc.inUse)
			}
			warns := strings.Count(logs.String(), "level=WARN")
			if tc.warned == "" {
				require.Zero(t, warns, logs.String())
				return
			}
			require.Equal(t, 1, warns, "one warning for the groups not checked: %s", logs.String())
			require.Contains(t, logs.String(), tc.warned)
			require.Contains(t, logs.String(), "Describe")
		})
	}
}
