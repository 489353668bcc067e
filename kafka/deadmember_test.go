package kafka_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/kafka"
	"github.com/fleetstream/fleetstream/testenv"
)

// TestCaughtUpWaitsForDeadMember: a member of the group that took partitions in a rebalance
// and then died without leaving (a killed process: no LeaveGroup, no more heartbeats) stays
// in the group's generation, holding them, until its session timeout. A Source with
// WithEndWhenCaughtUp that shares that generation must not count the dead member's
// partitions as covered: it ends its input only after the member expired and the group
// gave it those partitions, and reads every record. Before fef8b6c it ended after the idle
// time with the dead member's half of the topic unread (helper-60's crash restarts: 2,661
// of 6,000 records unread, exit 0).
func TestCaughtUpWaitsForDeadMember(t *testing.T) {
	t.Parallel()
	brokers := testenv.KafkaBrokers(t)
	const parts, n = 4, 4000
	topic := newTopic(t, brokers, "deadmember", parts)
	produceEvents(t, brokers, topic, parts, 0, n)
	group := testenv.UniqueName(t, "g-deadmember")
	cfg := consumerConfig(brokers, group, topic)

	// The fake member joins first, alone, so it leads the group and assigns the partitions
	// when the Source joins: the even ones to itself, the odd ones to the Source. Its session
	// timeout is the Source's (instances of one job share their settings); 6 s is also the
	// broker's least (group.min.session.timeout.ms).
	dead := joinRawMember(t, brokers, group, topic, parts, cfg.Rebalance.SessionTimeout)
	require.Equal(t, []string{dead.id}, dead.members, "alone in the group")

	ids := newIDSet()
	r := startPipeline(t, pipelineSpec{cfg: cfg, opts: []kafka.SourceOption{kafka.WithEndWhenCaughtUp(500 * time.Millisecond)}, ids: ids})

	// Heartbeat until the Source's join starts a rebalance, rejoin it, and die right after
	// the sync: the generation then holds the dead member with partitions 0 and 2.
	dead.heartbeatUntilRebalance(t)
	dead.rejoin(t)
	require.Len(t, dead.members, 2, "the Source joined the rebalance")
	require.Equal(t, []int32{0, 2}, dead.assigned, "the dead member holds the even partitions")
	dead.die()

	// The group as the Source's looks see it: stable, two members, the dead one holding its
	// partitions. (Checked, so that the run below is the scenario and not a plain drain.)
	requireGroup(t, brokers, group, func(g *sarama.GroupDescription) bool {
		m, ok := g.Members[dead.id]
		if g.State != "Stable" || len(g.Members) != 2 || !ok {
			return false
		}
		a, err := m.GetMemberAssignment()
		return err == nil && a != nil && slices.Equal(a.Topics[topic], []int32{0, 2})
	}, "the generation of the dead member and the Source")

	require.NoError(t, r.wait(t), "the run ends by itself")
	require.Empty(t, ids.missing(n), "records of the dead member's partitions were left unread")
	require.Equal(t, n, ids.distinct())
	requireCommittedAtEnd(t, brokers, group, topic, parts)
}

// rawMember is a consumer-group member that speaks the classic group protocol with raw
// requests (JoinGroup, SyncGroup, Heartbeat), so that a test can make it stop at any point
// as a killed process does, without leaving the group. As the group's leader it assigns the
// topic's partitions in turn over the members, itself first; it never reads or commits.
type rawMember struct {
	client  sarama.Client
	coord   *sarama.Broker
	group   string
	topic   string
	parts   int32
	session time.Duration

	id       string
	gen      int32
	members  []string // of the last generation it joined, itself first when leader
	assigned []int32  // its partitions in that generation
}

func joinRawMember(t *testing.T, brokers []string, group, topic string, parts int32, session time.Duration) *rawMember {
	t.Helper()
	client, err := sarama.NewClient(brokers, saramaConfig())
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Close() })
	m := &rawMember{client: client, group: group, topic: topic, parts: parts, session: session}
	require.Eventually(t, func() bool {
		if err := client.RefreshCoordinator(group); err != nil {
			return false
		}
		m.coord, err = client.Coordinator(group)
		return err == nil
	}, waitFor, 100*time.Millisecond, "no coordinator for %s", group)
	m.rejoin(t)
	return m
}

// rejoin joins the group (again) and syncs: as the leader, with the assignment.
func (m *rawMember) rejoin(t *testing.T) {
	t.Helper()
	for {
		req := sarama.NewJoinGroupRequest(sarama.V2_8_0_0)
		req.GroupId, req.MemberId, req.ProtocolType = m.group, m.id, "consumer"
		req.SessionTimeout = int32(m.session / time.Millisecond)
		req.RebalanceTimeout = int32(20 * time.Second / time.Millisecond)
		owned := []*sarama.OwnedPartition{}
		if len(m.assigned) > 0 {
			owned = append(owned, &sarama.OwnedPartition{Topic: m.topic, Partitions: m.assigned})
		}
		require.NoError(t, req.AddGroupProtocolMetadata(sarama.CooperativeStickyBalanceStrategyName,
			&sarama.ConsumerGroupMemberMetadata{Version: 1, Topics: []string{m.topic}, OwnedPartitions: owned}))
		resp, err := m.coord.JoinGroup(req)
		require.NoError(t, err)
		if resp.Err == sarama.ErrMemberIdRequired {
			m.id = resp.MemberId // KIP-394: join again with the id the coordinator gave
			continue
		}
		require.Equal(t, sarama.ErrNoError, resp.Err, "JoinGroup")
		m.id, m.gen = resp.MemberId, resp.GenerationId
		require.Equal(t, m.id, resp.LeaderId, "the raw member leads the group")

		m.members = []string{m.id}
		for _, x := range resp.Members {
			if x.MemberId != m.id {
				m.members = append(m.members, x.MemberId)
			}
		}
		slices.Sort(m.members[1:])
		plan := make(map[string][]int32)
		for p := range m.parts {
			id := m.members[int(p)%len(m.members)]
			plan[id] = append(plan[id], p)
		}
		ptype, pname := "consumer", sarama.CooperativeStickyBalanceStrategyName
		sync := &sarama.SyncGroupRequest{Version: 5, GroupId: m.group, GenerationId: m.gen, MemberId: m.id,
			ProtocolType: &ptype, ProtocolName: &pname}
		for _, id := range m.members {
			require.NoError(t, sync.AddGroupAssignmentMember(id, &sarama.ConsumerGroupMemberAssignment{Topics: map[string][]int32{m.topic: plan[id]}}))
		}
		sresp, err := m.coord.SyncGroup(sync)
		require.NoError(t, err)
		if sresp.Err == sarama.ErrRebalanceInProgress {
			continue // another member joined meanwhile
		}
		require.Equal(t, sarama.ErrNoError, sresp.Err, "SyncGroup")
		a, err := sresp.GetMemberAssignment()
		require.NoError(t, err)
		m.assigned = a.Topics[m.topic]
		return
	}
}

// heartbeatUntilRebalance heartbeats, a third of the session timeout apart, until the
// coordinator answers that the group is rebalancing (another member joined).
func (m *rawMember) heartbeatUntilRebalance(t *testing.T) {
	t.Helper()
	tick := time.NewTicker(m.session / 3) // the member's pace, as a consumer's heartbeat interval
	defer tick.Stop()
	deadline := time.After(waitFor)
	for {
		resp, err := m.coord.Heartbeat(&sarama.HeartbeatRequest{Version: 4, GroupId: m.group, GenerationId: m.gen, MemberId: m.id})
		require.NoError(t, err)
		if resp.Err == sarama.ErrRebalanceInProgress {
			return
		}
		require.Equal(t, sarama.ErrNoError, resp.Err, "Heartbeat")
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("no rebalance within %v", waitFor)
		}
	}
}

// die drops the member's connections without leaving the group, as a killed process does.
func (m *rawMember) die() { _ = m.client.Close() }

// requireGroup waits until DescribeGroups answers a description of group for which ok holds.
func requireGroup(t *testing.T, brokers []string, group string, ok func(*sarama.GroupDescription) bool, what string) {
	t.Helper()
	admin := newAdmin(t, brokers)
	var last error
	require.Eventually(t, func() bool {
		gs, err := admin.DescribeConsumerGroups([]string{group})
		if err == nil && len(gs) != 1 {
			err = errors.New("no description")
		}
		if err != nil {
			last = err
			return false
		}
		return ok(gs[0])
	}, waitFor, 50*time.Millisecond, "%s: never seen (%v)", what, last)
}
