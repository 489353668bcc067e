// A test hook: an Exchange's consumer that joins its group late.

package kafka

import (
	"time"

	"github.com/fleetstream/fleetstream/internal/backoff"
)

// testJoinDelay delays the first group join of every Exchange's consumer of the process,
// unless the exchange sets its own (joinDelay). It is zero unless a test binary built with
// the fleetstream_testhooks tag sets it from the environment (joindelay_hook.go), so that
// end-to-end tests of pipeline binaries reproduce a repartition's consumer that joins the
// group after the input's first batches. Production builds never set it.
var testJoinDelay time.Duration

// joinLate waits, before a repartition's consumer first joins its group, as long as a test
// asked (exchangeOptions.joinDelay, testJoinDelay), or until the run ends.
func (s *Source[T]) joinLate(done <-chan struct{}) {
	d := s.o.joinDelay
	if d == 0 {
		d = testJoinDelay
	}
	if !s.o.exchange || d <= 0 {
		return
	}
	s.log.Info("kafka: test hook: the exchange's consumer joins the group late", "delay", d)
	backoff.Sleep(done, d)
}
