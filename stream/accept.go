// Accepted assignments: a source learns when the pipeline accepted the partitions it handed
// over (Input.Accepted), so that it can hold back what a refused restart must not do.

package stream

// acceptWaiter is a channel of Input.Accepted, closed once the pipeline accepted n positions.
type acceptWaiter struct {
	n  int
	ch chan struct{}
}

// closedChan is the channel of Input.Accepted when nothing waits to be accepted.
var closedChan = func() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}()

// Accepted returns a channel that is closed once the pipeline accepted every partition handed
// over before the call (Assign, Resume): it took them at the start of a batch, with their
// checkpoints, and did not stop on them. A checkpoint the pipeline must not resume from
// (ErrOperatorChanged, ErrInputChanged) stops the pipeline instead, before the batch's outputs,
// and the channel is never closed. A source that does something for a partition which is
// not an output of the pipeline, and which a refused restart must not do (a Kafka Source's
// dead letters), waits for it: a job refused at every restart would otherwise repeat it each
// time from the committed offset. The channel is closed at once if every partition handed over
// was accepted already.
func (in *Input[T]) Accepted() <-chan struct{} {
	in.mu.Lock()
	defer in.mu.Unlock()
	n := in.taken + len(in.assigned)
	if n <= in.accepted {
		return closedChan
	}
	if k := len(in.acceptWait); k > 0 && in.acceptWait[k-1].n == n {
		return in.acceptWait[k-1].ch
	}
	ch := make(chan struct{})
	in.acceptWait = append(in.acceptWait, acceptWaiter{n: n, ch: ch})
	return ch
}

// acceptTaken accepts every position the pipeline took so far.
func (in *Input[T]) acceptTaken() {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.accepted = in.taken
	k := 0
	for _, w := range in.acceptWait {
		if w.n > in.accepted {
			break // waiters are in the order of n
		}
		close(w.ch)
		k++
	}
	if k > 0 {
		in.acceptWait = append(in.acceptWait[:0], in.acceptWait[k:]...)
	}
}

func (s *source[T]) accept() { s.in.acceptTaken() }

// accept accepts the partitions every source handed over before the batch (Input.Accepted):
// called once the batch applied them (applyControl) and none stopped the pipeline (ctlErr).
// Accepting all sources together keeps a refusal of one source's partition from letting
// another source's go on (the pipeline stops).
func (p *Pipeline) accept() {
	for _, sn := range p.srcs {
		sn.accept()
	}
}
