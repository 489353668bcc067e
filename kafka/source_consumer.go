// What the Source's options change in its consumer's sarama config.

package kafka

import (
	"time"

	"github.com/IBM/sarama"
)

// boundedFetchWait is a bounded Source's default Fetch.MaxWait, shorter than an unbounded
// one's 250ms. Once a bounded read has its last records, the consumer's next fetch waits at
// the broker for records that will not come, and the session's end (its last commit, the
// group's LeaveGroup) goes over the same connection, behind that fetch: each bounded run ended
// up to Fetch.MaxWait later than its last record, about a fifth of BenchmarkSource's read of
// 1,000,000 records. Reading a backlog, fetches return at once with records: the shorter wait
// costs nothing there.
const boundedFetchWait = 50 * time.Millisecond

// consumerOptions sets in sc what the Source's options change, before WithSaramaConfig's
// function sees it.
func (s *Source[T]) consumerOptions(sc *sarama.Config) {
	if s.o.readCommitted || s.eos.Load() != nil {
		// Exactly once reads read_committed, as Kafka Streams does: that also makes the
		// group's offset fetches wait for offsets that a transaction still completing
		// committed (KIP-447's require_stable). Without it, a new owner of a partition could
		// start from the offset before the last transaction of the one that left: the
		// transaction's commit returns before its markers are written, and until then the
		// coordinator answers with the older offset, and the read-back of the output topics
		// stops at their last stable offset, before that transaction's messages. The
		// records would be processed again and their output written twice.
		sc.Consumer.IsolationLevel = sarama.ReadCommitted
	}
	if s.o.bounded && s.cfg.Fetch.MaxWait == 0 {
		sc.Consumer.MaxWaitTime = boundedFetchWait
	}
}
