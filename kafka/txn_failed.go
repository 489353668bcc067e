// A failed transaction: what a failure means for the transactional producer (abort, replace,
// or stop the pipeline), and the producer's replacement.

package kafka

import (
	"errors"
	"fmt"

	"github.com/IBM/sarama"

	"github.com/fleetstream/fleetstream/stream"
)

// failed aborts the transaction after err. A fencing error, or a fatal state after any
// other, is kept, as a permanent error: the pipeline stops (a restart replays from the
// committed checkpoints, which is exact) instead of retrying a producer that cannot go on.
//
// A group generation that moved on (ILLEGAL_GENERATION, REBALANCE_IN_PROGRESS: a rebalance
// began while the offsets went in) is not kept: the messages stay pending and the next commit
// sends them with the offsets of the partitions still owned, under the new generation. If the
// producer cannot abort, it is replaced (the new one fences the old and aborts its
// transaction). A partition that the rebalance revokes while messages are pending, and that
// cannot be committed with them, or one the pipeline does not let go in time, stops the
// Source (see release), since output made from its records could commit twice.
func (t *txn) failed(err error) error {
	err = redact(&t.cfg, err)
	status := t.prod.TxnStatus()
	fatal := status&sarama.ProducerTxnFlagFatalError != 0
	moved := errors.Is(err, sarama.ErrIllegalGeneration) || errors.Is(err, sarama.ErrRebalanceInProgress)
	if errors.Is(err, ErrNotAuthorized) { // no retry gets past the ACLs
		fatal, moved = true, false
	}
	if permanentProduceError(err) {
		// A message the client or the broker refuses however often it is sent (too large
		// for the topic's max.message.bytes, say): kept pending, it failed every later
		// commit while the pipeline ran on committing nothing.
		fatal, moved = true, false
	}
	if isMetadataTooLarge(err) { // nor past the broker's limit: the messages would pile up
		fatal, moved = true, false
		err = errors.Join(metadataTooLarge("the transaction's offsets", -1), err)
	}
	for _, k := range []sarama.KError{sarama.ErrProducerFenced, sarama.ErrUnknownMemberId,
		sarama.ErrFencedInstancedId, sarama.ErrInvalidProducerEpoch, sarama.ErrTransactionalIDAuthorizationFailed} {
		if errors.Is(err, k) {
			fatal, moved = true, false
		}
	}
	if !fatal && !moved && status&(sarama.ProducerTxnFlagEndTransaction|sarama.ProducerTxnFlagCommittingTransaction|sarama.ProducerTxnFlagAbortingTransaction) != 0 {
		// The commit had begun (sarama enters its end state before it adds the offsets and
		// sends EndTxn, each with retries) and was given up on: the coordinator may have
		// committed the transaction or not (if EndTxn was never sent, it was not, and the
		// coordinator aborts it when the id is initialised again), and the producer refuses
		// every later one ("invalid transition attempted"). Neither aborting nor sending the
		// messages again is safe: the pipeline stops, and a restart replays from the
		// committed checkpoints, whose read-back finds the output if it was committed
		// (helper-70: a commit that reached a broker being stopped failed this way, and the
		// Source ran on, refusing every transaction, until a rebalance stopped it, or, at a
		// bounded run's last batch, never).
		fatal = true
		err = fmt.Errorf("the transaction's commit failed once it had begun, so its outcome is unknown (a restart replays from the committed checkpoints and finds its output if it took effect): %w", err)
	}
	if !fatal && status&(sarama.ProducerTxnFlagInTransaction|sarama.ProducerTxnFlagAbortableError) != 0 {
		if aerr := t.prod.AbortTxn(); aerr != nil {
			err = errors.Join(err, fmt.Errorf("kafka: abort transaction: %w", aerr))
			fatal = true
		}
	}
	if fatal && moved {
		t.log.Warn("kafka: exactly-once: the group generation moved on during a commit; replacing the transactional producer", "err", err)
		t.reset()
		return err
	}
	if fatal {
		if errors.Is(err, sarama.ErrProducerFenced) || errors.Is(err, sarama.ErrInvalidProducerEpoch) {
			// sarama prints PRODUCER_FENCED as an unknown error code 90.
			err = fmt.Errorf("producer fenced: another producer initialised transactional id %q after this one "+
				"(every instance needs an id of its own, WithTransactionalID, and a restarted instance fences its old self): %w", t.id, err)
		} else if errors.Is(err, sarama.ErrUnknown) {
			// The coordinator answers UNKNOWN_SERVER_ERROR to an EndTxn that races the fence
			// of another producer's InitProducerId (its log: "Preparing transaction state
			// transition to ONGOING while it already a pending state PREPARE_EPOCH_FENCE").
			err = fmt.Errorf("the transaction coordinator failed without a reason; it answers so when another producer "+
				"initialises transactional id %q during this one's commit (every instance needs an id of its own, "+
				"WithTransactionalID; see the coordinator's log): %w", t.id, err)
		}
		if errors.Is(err, sarama.ErrFencedInstancedId) {
			// Another process joined the group with this member's instance id.
			err = fmt.Errorf("%w: %q (Config.Rebalance.InstanceID): give every instance an id of its own: %w",
				ErrFencedInstance, t.instanceID, err)
		}
		t.err = stream.Permanent(fmt.Errorf("%w: %w", ErrTransaction, err))
		return t.err
	}
	return err
}

// reset closes the producer; the next commit connects a new one with the same id. t.mu is
// held.
func (t *txn) reset() {
	if t.prod != nil {
		_ = t.prod.Close()
	}
	if t.client != nil {
		_ = t.client.Close()
	}
	t.prod, t.client = nil, nil
}
