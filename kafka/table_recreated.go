// How a Table notices that its topic was deleted and created again under the same name, and
// reads the new topic from its start.

package kafka

import (
	"errors"
	"sync"
	"time"

	"github.com/IBM/sarama"
)

// recreatedEvery is how often a followed partition checks whether its topic was recreated.
const recreatedEvery = 5 * time.Second

// topicID returns topic's id (zero when the brokers do not tell: metadata before version 10,
// a Config.Version before 2.8), or missing when the topic does not exist.
func topicID(client sarama.Client, topic string) (id sarama.Uuid, missing bool, err error) {
	b := client.LeastLoadedBroker()
	if b == nil {
		return id, false, sarama.ErrClosedClient
	}
	req := sarama.NewMetadataRequest(client.Config().Version, []string{topic})
	resp, err := b.GetMetadata(req)
	if err != nil {
		_ = b.Close() // the next request connects again
		return id, false, err
	}
	for _, tm := range resp.Topics {
		if tm.Name != topic {
			continue
		}
		switch {
		case errors.Is(tm.Err, sarama.ErrUnknownTopicOrPartition):
			return id, true, nil
		case !errors.Is(tm.Err, sarama.ErrNoError):
			return id, false, tm.Err
		}
		return tm.Uuid, false, nil
	}
	return id, true, nil
}

// topicCheck is the last topicID answer, which the partitions of a table share for
// recreatedEvery/2: one metadata request per table and check, not one per partition.
type topicCheck struct {
	mu      sync.Mutex
	at      time.Time
	id      sarama.Uuid
	missing bool
	err     error
}

// currentTopicID is topicID of the table's topic, read at most every recreatedEvery/2.
func (t *Table[K, V]) currentTopicID() (sarama.Uuid, bool, error) {
	c := &t.idCheck
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := time.Now(); c.at.IsZero() || now.Sub(c.at) >= recreatedEvery/2 {
		c.id, c.missing, c.err = topicID(t.client, t.topic)
		c.at = now
	}
	return c.id, c.missing, c.err
}

// recreated reports why p's topic is no longer the one p reads (empty if it is), and the
// topic's id now: its id changed; without ids, it was missing at an earlier check, or the
// log's end is before p's next offset (offsets went backwards); or another partition of the
// same rows found it recreated (the rows' generation is not p's). sarama's consumer does not
// notice: it asks the new log for the old one's offsets (and got none of its records in
// TestTableTopicRecreated).
func (t *Table[K, V]) recreated(p *tablePart, r *rows[K, V]) (string, sarama.Uuid) {
	t.mu.RLock()
	stale := p.gen != r.gen
	t.mu.RUnlock()
	id, missing, err := t.currentTopicID()
	switch {
	case stale:
		return "another partition found the topic recreated", id
	case err != nil:
		t.log.Debug("kafka: table topic id", "partition", p.id, "err", redact(&t.cfg, err))
		return "", id
	case p.topicID == sarama.Uuid{} && !p.missing:
		p.topicID = id // not known when p started
	}
	switch {
	case missing:
		p.missing = true
		return "", id
	case id != sarama.Uuid{} && p.topicID != sarama.Uuid{}:
		if id != p.topicID {
			return "the topic's id changed", id
		}
		return "", id
	case p.missing:
		return "the topic was missing and is back", id
	}
	newest, err := offsetsAt(t.client, t.topic, []int32{p.id}, sarama.OffsetNewest)
	if err == nil && newest[p.id] < p.next.Load() {
		return "the partition's end offset went back before what the table read", id
	}
	return "", id
}

// reread drops r's versions (once for all the partitions that read for r), closes p's
// consumer and starts another from the new log's start; it returns that consumer, nil once p
// is stopped.
func (t *Table[K, V]) reread(p *tablePart, r *rows[K, V], id sarama.Uuid, why string) sarama.PartitionConsumer {
	t.mu.Lock()
	dropped := p.gen == r.gen
	if dropped {
		fresh := newRows[K, V]()
		fresh.gen = r.gen + 1
		*r = fresh
	}
	p.gen = r.gen
	t.mu.Unlock()
	p.topicID, p.missing = id, false
	t.log.Warn("kafka: table topic deleted and created again: the keys read from the old one are dropped and the new one is read from its start",
		"partition", p.id, "why", why, "dropped_here", dropped)
	pc := p.consumer()
	go func() {
		for range pc.Messages() { // the old consumer's: read again from the start
		}
	}()
	_ = pc.Close() // drains its errors until sarama closed both channels
	p.next.Store(0)
	if newest, err := offsetsAt(t.client, t.topic, []int32{p.id}, sarama.OffsetNewest); err == nil {
		p.end = newest[p.id] // while it loads: the new log's end
	}
	return t.resume(p, "kafka: table partition read again from its start: its topic was recreated")
}
