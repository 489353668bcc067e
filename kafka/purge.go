// A repartition topic keeps its records until the pipeline is done with them, and no longer:
// it is made with unlimited retention, and its downstream Source deletes what the group has
// committed (as Kafka Streams purges its repartition topics). So a pipeline stopped for
// longer than the broker's retention still finds every record it had yet to read, and the
// topic does not grow with the input.

package kafka

import (
	"context"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
)

// defaultPurgeInterval is WithPurgeInterval's default (Kafka Streams' repartition purge
// interval).
const defaultPurgeInterval = 30 * time.Second

// repartitionTopicConfig is the topic configuration of a repartition topic made by an
// Exchange. Records stay until purged, whatever the cluster's defaults: retention.bytes and
// cleanup.policy are the topic's own too (a cluster's log.retention.bytes, set to bound its
// disks, deleted records the group had yet to read; a log.cleanup.policy compact made the
// broker refuse them, having no key). And the topic takes every message of the exchange's
// producer, whose MaxMessageBytes is maxMsg (the broker checks a record batch, its header
// included, against max.message.bytes; sarama keeps a batch's records below maxMsg): with
// the broker's message.max.bytes (1 MiB by default) and a producer allowed more
// (WithSaramaConfig), a record Send accepted was refused by the broker.
func repartitionTopicConfig(maxMsg int) map[string]*string {
	unlimited := "-1"
	batch := maxMsg + batchOverhead + sizeSlack // the largest record batch the producer sends
	size := strconv.Itoa(batch)
	del := "delete"
	// The purge moves the log's start; the broker frees a segment's disk only once all of it
	// is below that start. With the broker's 1 GiB segments (log.segment.bytes) a purged
	// topic kept up to a GiB a partition, and a quiet one everything until the weekly roll:
	// segments of 50 MiB or 10 minutes, as Kafka Streams makes its repartition topics.
	// A segment holds at least one record batch: the broker refuses a batch larger than
	// segment.bytes.
	segBytes := strconv.Itoa(max(repartitionSegmentBytes, batch))
	segMs := strconv.Itoa(int(repartitionSegmentAge / time.Millisecond))
	return map[string]*string{"retention.ms": &unlimited, "retention.bytes": &unlimited, "cleanup.policy": &del,
		"max.message.bytes": &size, "segment.bytes": &segBytes, "segment.ms": &segMs}
}

// A repartition topic's segments (segment.bytes and segment.ms of the topics an Exchange
// makes): the size and age at which the broker rolls them, so that what the purge deletes
// frees its disk (Kafka Streams' settings for its repartition topics).
const (
	repartitionSegmentBytes = 50 << 20
	repartitionSegmentAge   = 10 * time.Minute
)

// WithPurgeInterval sets how often an Exchange's downstream side deletes the records of its
// repartition topic that the pipeline's group has committed past (default 30s). A repartition
// topic the Exchange makes has unlimited retention (retention.ms -1): the purge keeps it
// small. A topic made before by another release keeps its retention; set retention.ms to -1
// on it to have the same. Negative: never purge (then give the topic a retention). An
// interval below a second (minPurgeInterval) is refused with ErrInvalidOption: each purge
// fetches the group's committed offsets and sends a DeleteRecords request to every leader.
func WithPurgeInterval(d time.Duration) ExchangeOption {
	return exchangeOpt(func(o *exchangeOptions) {
		if d >= 0 && d < minPurgeInterval {
			o.errs = append(o.errs, invalid("WithPurgeInterval", "%v: want at least %v, or negative for no purge", d, minPurgeInterval))
		}
		o.purge = d
	})
}

// minPurgeInterval is the shortest interval WithPurgeInterval takes. Kafka Streams purges
// at each commit (30s by default); a purge per nanosecond (a typo of units) kept the
// brokers busy with requests that delete nothing.
const minPurgeInterval = time.Second

// purge deletes the records of the Source's topics below the group's committed offsets. Only
// committed offsets count: a replay after a crash starts there, never before. It reports
// false when the ACLs refuse the deletion (no retry would be let through).
func (s *Source[T]) purge(client sarama.Client) bool {
	parts := make(map[string][]int32)
	for _, topic := range s.cfg.Topics {
		ps, err := client.Partitions(topic)
		if err != nil {
			return true
		}
		parts[topic] = ps
	}
	commits, err := groupCommits(client, s.cfg.Group, parts)
	if err != nil {
		s.log.Debug("kafka: purge: committed offsets", "err", redact(&s.cfg, err))
		return true
	}
	byLeader := make(map[*sarama.Broker]*sarama.DeleteRecordsRequest)
	for tp, c := range commits {
		if c.Offset <= 0 {
			continue
		}
		leader, err := client.Leader(tp.topic, tp.part)
		if err != nil {
			continue
		}
		req := byLeader[leader]
		if req == nil {
			req = &sarama.DeleteRecordsRequest{Topics: make(map[string]*sarama.DeleteRecordsRequestTopic), Timeout: 10 * time.Second}
			byLeader[leader] = req
		}
		t := req.Topics[tp.topic]
		if t == nil {
			t = &sarama.DeleteRecordsRequestTopic{PartitionOffsets: make(map[int32]int64)}
			req.Topics[tp.topic] = t
		}
		t.PartitionOffsets[tp.part] = c.Offset
	}
	for leader, req := range byLeader {
		resp, err := leader.DeleteRecords(req)
		if err != nil {
			s.log.Debug("kafka: purge", "err", redact(&s.cfg, err))
			continue
		}
		for topic, rt := range resp.Topics {
			for part, rp := range rt.Partitions {
				switch {
				case rp.Err == sarama.ErrNoError:
				case isNotAuthorized(rp.Err):
					s.log.Warn("kafka: the repartition topic's committed records cannot be deleted (the ACLs do not allow DeleteRecords on it); give it a retention instead", "topic", topic, "err", rp.Err)
					return false
				default:
					s.log.Debug("kafka: purge", "topic", topic, "partition", part, "err", rp.Err)
				}
			}
		}
	}
	return true
}

// purgeEvery purges at the Source's purge interval until ctx ends or the ACLs refuse it
// (purging is then cleared, so that Run does not try once more at its end).
func (s *Source[T]) purgeEvery(ctx context.Context, client sarama.Client, purging *atomic.Bool) {
	t := time.NewTicker(s.o.purge)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !s.purge(client) {
			purging.Store(false)
			return
		}
	}
}
