// The high-water marks of paused claims: while the pipeline is blocked (an output outage), its
// input fills, each claim fills its hold and pauses fetching, and sarama's mark of the
// partition (ConsumerGroupClaim.HighWaterMarkOffset, updated by fetch responses only) stops
// where the last fetch left it. The lag in Stats then froze while the backlog grew (an
// operator's probe: read lag 0 fifty seconds into an OpenSearch outage, 136,000 records
// behind). A goroutine of Run lists the marks of the paused claims' partitions instead.

package kafka

import (
	"context"
	"time"

	"github.com/IBM/sarama"
)

// endsEvery is how often Run lists the high-water marks of paused claims.
const endsEvery = 2 * time.Second

// highWater is the partition's high-water mark as last known: the claim's, from its last
// fetch, or the one listed while the claim was paused (listEnds), whichever is higher.
func (p *partition) highWater() int64 {
	return max(p.claim.HighWaterMarkOffset(), p.listedEnd.Load())
}

// setPaused notes whether the claim stopped fetching: its hold is full (the pipeline does not
// take its records). Called when that changes, never per record.
func (p *partition) setPaused(paused bool) { p.paused.Store(paused) }

// refreshEnds lists the high-water marks of the paused claims' partitions every endsEvery,
// until ctx ends, so that Stats reports the lag growing while the pipeline is blocked. While
// every claim fetches it sends nothing, and it makes the client of its own for the requests
// (lookClient: a request on the consumer's connections waits behind its fetches) only when
// a claim first pauses.
func (s *Source[T]) refreshEnds(ctx context.Context, sc *sarama.Config, consumer sarama.Client) {
	tick := time.NewTicker(endsEvery)
	defer tick.Stop()
	var client sarama.Client
	closeClient := func() {}
	defer func() { closeClient() }()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		paused := s.pausedClaims()
		if len(paused) == 0 {
			continue
		}
		if client == nil {
			client, closeClient = s.lookClient(sc, consumer)
		}
		s.listEnds(client, paused)
	}
}

// pausedClaims returns the owned partitions whose claims are paused, by topic; nil if none is.
func (s *Source[T]) pausedClaims() map[string][]*partition {
	s.mu.Lock()
	defer s.mu.Unlock()
	var byTopic map[string][]*partition
	for _, p := range s.owned {
		if !p.paused.Load() {
			continue
		}
		if byTopic == nil {
			byTopic = make(map[string][]*partition)
		}
		byTopic[p.topic] = append(byTopic[p.topic], p)
	}
	return byTopic
}

// listEnds asks the partitions' leaders for their high-water marks and keeps them
// (partition.listedEnd). A partition whose leader does not answer (a broker outage) keeps the
// mark it had: the next tick asks again.
func (s *Source[T]) listEnds(client sarama.Client, byTopic map[string][]*partition) {
	for topic, ps := range byTopic {
		ids := make([]int32, len(ps))
		for i, p := range ps {
			ids[i] = p.part
		}
		ends, failed := listOffsets(client, topic, ids, sarama.OffsetNewest)
		if err := firstFailed(failed); err != nil {
			s.log.Debug("kafka: listing the high-water marks of paused partitions", "topic", topic, "err", redact(&s.cfg, err))
		}
		for _, p := range ps {
			end, ok := ends[p.part]
			if !ok {
				continue
			}
			// Only ever up: a late answer must not take back a mark listed since.
			for old := p.listedEnd.Load(); end > old; old = p.listedEnd.Load() {
				if p.listedEnd.CompareAndSwap(old, end) {
					break
				}
			}
		}
	}
}
