// Run's wait, before its first batch, for the repartitions whose sources register their
// partitions (PartitionRegistrar).

package stream

import (
	"context"
	"time"
)

// registrationReminder is how often Run logs that it still waits for a repartition's source
// to register its partitions (see PartitionRegistrar).
const registrationReminder = 30 * time.Second

// awaitRegistrations returns once every repartition's source that says it registers its
// partitions (PartitionRegistrar) did (Input.Assign, Resume). A repartition's partitions
// resume from checkpoints that the first batch must check (ErrInputChanged,
// ErrOperatorChanged) before it writes or commits anything, and that a bounded run's end
// commits again; its Kafka consumer is a further member of the group, which may join after
// the input's records came (helper-75). A stop or a source's error ends the wait: it returns
// what Run must return then, and true. sourceEnded and ended are Run's.
func (p *Pipeline) awaitRegistrations(ctx context.Context, srcDone <-chan srcExit, sourceEnded func(srcExit) (error, bool), ended func() error) (error, bool) {
	clk := p.cfg.clock
	for _, sn := range p.srcs {
		name, ok := sn.awaitsRegistration()
		if !ok || sn.registeredOrClosed() {
			continue
		}
		since := clk.Now()
		p.cfg.logger.Info("stream: waiting for a repartition's source to register its partitions before the first batch", "repartition", name)
		remind := clk.After(registrationReminder)
		for !sn.registeredOrClosed() {
			select {
			case <-ctx.Done():
				return ended(), true
			case <-sn.registered():
			case <-remind:
				p.cfg.logger.Warn("stream: still waiting for a repartition's source to register its partitions; no batch runs before", "repartition", name, "waited", clk.Now().Sub(since).Round(time.Millisecond))
				remind = clk.After(registrationReminder)
			case ex := <-srcDone:
				if err, end := sourceEnded(ex); end {
					return err, true
				}
			}
		}
		p.cfg.logger.Info("stream: a repartition's source registered its partitions", "repartition", name, "waited", clk.Now().Sub(since).Round(time.Millisecond))
	}
	return nil, false
}

// UnregisteredRepartitions names the repartitions whose exchanges say they register their
// partitions (PartitionRegistrar) and have assigned or resumed none yet, nor ended: Run waits
// for them before its first batch. A harness that calls Step instead feeds the exchanges
// itself; package streamtest asks this before its first batch, so that an exchange it does
// not feed fails the test at once rather than after a run whose input never ends.
func (p *Pipeline) UnregisteredRepartitions() []string {
	var names []string
	for _, sn := range p.srcs {
		if name, ok := sn.awaitsRegistration(); ok && !sn.registeredOrClosed() {
			names = append(names, name)
		}
	}
	return names
}
