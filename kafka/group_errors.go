// The consumer group's errors: those that stop the Source, those it handles, and the rest,
// which it logs without flooding the log during an outage.

package kafka

import (
	"errors"
	"time"

	"github.com/IBM/sarama"
)

// The consumer group's other errors are logged one by one for the first groupLogFirst, then
// one line per groupLogEvery with the count of those left out. During a broker outage sarama
// reports an error per partition every few seconds (an operator's probe: 107 WARN lines in
// 38 s for 24 partitions), more the more partitions; the first error of each outage is still
// logged at once (one interval after the last line).
const (
	groupLogFirst = 3
	groupLogEvery = 10 * time.Second
)

// groupErrors handles the consumer group's errors until errs closes: a fetch or commit that
// the ACLs refuse, a fenced static member or a record too large stop the Source, an offset
// out of range is handled (outOfRange), the rest are logged (logGroupError).
func (s *Source[T]) groupErrors(errs <-chan error, client sarama.Client) {
	for err := range errs {
		if isNotAuthorized(err) {
			// A fetch or a commit refused by the ACLs: no retry will be let through.
			a := access{topics: s.cfg.Topics, group: s.cfg.Group}
			if ce := (*sarama.ConsumerError)(nil); errors.As(err, &ce) && ce.Topic != "" {
				a.topics = []string{ce.Topic}
			}
			s.fail(s.cfg.notAuthorized(err, a))
			continue
		}
		if errors.Is(err, sarama.ErrFencedInstancedId) {
			s.fail(s.fenced(err))
			continue
		}
		if ce := (*sarama.ConsumerError)(nil); errors.As(err, &ce) && isMetadataTooLarge(ce.Err) {
			s.fail(s.metadataTooLarge(ce.Topic, ce.Partition))
			continue
		}
		if ce := (*sarama.ConsumerError)(nil); errors.As(err, &ce) && errors.Is(ce.Err, sarama.ErrOffsetOutOfRange) {
			s.outOfRange(client, ce)
			continue
		}
		s.logGroupError(time.Now(), err)
	}
}

// logGroupError logs an error of the consumer group at Warn, unless groupLog left it out.
func (s *Source[T]) logGroupError(now time.Time, err error) {
	if ok, left := s.groupLog.Allow(now); ok {
		s.log.Warn("kafka: consumer group error", "err", redact(&s.cfg, err), "not_logged_since_last", left)
	}
}
