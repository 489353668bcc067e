// One batch: Step and step run a batch through the graph, its outputs and its commit, and
// publish its stats; noteRetry reports a failed attempt; waiting says how much input is
// waiting for the next batch. Run (run.go) calls step on its schedule.

package stream

import (
	"context"
	"time"
)

// Step runs one batch synchronously at the clock's current time, without starting the
// source: it is the building block of Run, exported for harnesses (package streamtest) that
// push records through a Binder source. If the previous Step's outputs failed, Step retries
// that batch's failed outputs instead of taking a new batch. done is true once the input
// ended and the final batch was acknowledged. Once Run returned, Step returns ErrRunTwice.
func (p *Pipeline) Step(ctx context.Context) (done bool, err error) {
	if err := p.Err(); err != nil {
		return false, err
	}
	if len(p.srcs) == 0 {
		return false, ErrNoSource
	}
	if p.running.Load() {
		return false, ErrRunning
	}
	if p.ran.Load() {
		// Run stopped the sources and closed the outputs.
		return false, ErrRunTwice
	}
	p.stopCtx = ctx
	defer func() { p.stopCtx = nil }()
	return p.step(ctx, p.cfg.clock.Now())
}

func (p *Pipeline) step(ctx context.Context, scheduled time.Time) (bool, error) {
	if p.finished {
		return true, nil
	}
	p.commitTook, p.commitWait = 0, 0
	retry := p.pending != nil
	if !retry {
		if err := p.openShuffles(ctx); err != nil {
			return false, Permanent(err)
		}
		p.startBatch(scheduled)
	}
	if p.ctlErr != nil {
		return false, Permanent(p.ctlErr)
	}
	p.accept()
	b := p.pending
	b.attempts++
	outStart := p.cfg.clock.Now()
	errs := p.flushOutputs(ctx, b)
	if len(errs) > 0 {
		return false, &OutputError{Batch: b.info.Batch, Errs: errs}
	}
	outTime := p.cfg.clock.Now().Sub(outStart)
	committed := p.ack(ctx, b)
	if retry {
		// Assignments and revocations that came while the batch's outputs were retried are
		// applied once it is written and acknowledged, not before: a revocation's channel
		// closes only after the commit of the batch in flight, which may hold the partition's
		// records, reached the source (applyControl settles it first; Input.Revoke).
		p.handleControl()
	}
	if p.commitCtx == nil {
		p.settle() // Step: the batch's commit ends before it returns (Run overlaps it)
	}
	sent := 0
	var returning []bool // by shuffle: values or end marks on their way back
	if len(p.shuffles) > 0 {
		returning = make([]bool, len(p.shuffles))
	}
	for i, sh := range p.shuffles {
		n := sh.valuesSent()
		sent += n
		// A catch-up's last values (see p.soon). Not after a batch that took a full
		// buffer: in a backlog the full buffers start the batches, and a trickle of
		// returning values must not start them sooner, smaller.
		returning[i] = p.behind && n > 0 && !b.full
	}
	outs := make([]OutputStats, len(p.outputs))
	for i, o := range p.outputs {
		outs[i] = OutputStats{Output: o.outputName(), Values: o.outValues(), Time: b.outTime[i], Attempts: b.outCalls[i]}
		o.reset()
	}
	var dups int64
	ending := false
	for i, sh := range p.shuffles {
		e := sh.finish(p)
		returning[i] = returning[i] || e
		ending = e || ending
		dups += sh.duplicates()
	}
	st := BatchStats{
		Batch:           b.info.Batch,
		Time:            b.info.Time,
		InputRecords:    b.records,
		ShuffledRecords: b.shuffled,
		InputBytes:      b.bytes,
		SchedulingDelay: max(0, b.started.Sub(b.info.Time)),
		ProcessingTime:  b.procTime,
		OutputTime:      outTime,
		Outputs:         outs,
		CommitTime:      p.commitTook,
		CommitWait:      p.commitWait,
		Attempts:        b.attempts,
		Partitions:      len(p.live),
		Committed:       committed,
		Duplicates:      dups,
		PartitionStats:  p.partitionStats(),
	}
	st.Watermark = b.info.Watermark
	st.State = make([]OperatorState, 0, p.statefulNodes())
	for _, n := range p.nodes {
		size := n.stateSize()
		st.RetainedState += size
		if hasState(n) {
			st.State = append(st.State, OperatorState{Operator: n.(interface{ Name() string }).Name(), Entries: size})
			n.reportState(&st.State[len(st.State)-1])
		}
	}
	st.Source = p.sourceStats()
	// The next batch need not wait for the tick when this one took a full buffer, left a
	// tenth of one waiting, or a repartition's end marks are on their way back; nor after the
	// first batch that is no longer behind, when it sent values to a repartition: the batch
	// that reads them back closes a catch-up (otherwise they waited an interval, a second of
	// a drain's tail at the default).
	behind := b.full || p.waiting(st.Source) >= max(1, int64(p.cfg.maxRecords/10))
	p.soon = behind || ending || p.behind && sent > 0
	// While a repartition's values or end marks are on their way back, the next batch
	// would wait a tenth of the interval (see Run); they wake it as soon as any of them
	// arrives instead (a hop through the broker takes milliseconds; the tenth of the
	// default interval was 100 ms of every hop at the end of a bounded run).
	for i, sh := range p.shuffles {
		sh.awaitReturn(returning[i])
	}
	p.behind = behind
	p.statsMu.Lock()
	p.stats = st
	recovered := p.retrying
	p.retrying = nil
	p.statsMu.Unlock()
	if recovered != nil {
		// failing_for counts, like the retry lines' (noteRetry), from the batch's first failed
		// attempt's return (RetryInfo.Since): after the sink's own retries within it, so an
		// outage lasted longer, by up to that attempt's time. It was logged as "outage",
		// which it is not (a 58 s Kafka outage read 33 s): stream does not know when the
		// sink's system went away.
		p.cfg.logger.Info("stream: batch written after retries", "batch", st.Batch, "attempts", st.Attempts,
			"failing_for", p.cfg.clock.Now().Sub(recovered.Since).Round(time.Millisecond))
	}
	if p.cfg.statsHook != nil {
		p.cfg.statsHook(st)
	}
	p.pending = nil
	if b.end {
		p.finished = true
	}
	return b.end, nil
}

// noteRetry publishes a failed attempt (Retrying, WithRetryHook) and logs it: the first
// attempts each, then at most one line a minute with the count of the ones left out.
func (p *Pipeline) noteRetry(attempts int, d time.Duration, err error) {
	now := p.cfg.clock.Now()
	p.statsMu.Lock()
	info := RetryInfo{Batch: p.pending.info.Batch, Attempt: attempts, Since: now, Backoff: d, Err: err}
	if p.retrying != nil && p.retrying.Batch == info.Batch {
		info.Since = p.retrying.Since
	}
	p.retrying = &info
	p.statsMu.Unlock()
	if ok, suppressed := p.retryLog.Allow(now); ok {
		p.cfg.logger.Warn("stream: batch outputs failed, retrying", "batch", info.Batch, "attempt", attempts, "backoff", d,
			"failing_for", now.Sub(info.Since).Round(time.Millisecond), "suppressed", suppressed, "err", err)
	}
	if p.cfg.retryHook != nil {
		p.cfg.retryHook(info)
	}
}

// waiting returns the records waiting for the next batch: in the sources' buffers, and in
// their partitions beyond what was read (SourceStats End - Read, over the partitions that
// report both).
func (p *Pipeline) waiting(st SourceStats) int64 {
	var lag int64
	for _, sn := range p.srcs {
		lag += int64(sn.buffered())
	}
	for name, end := range st.End {
		if read, ok := st.Read[name]; ok && end > read {
			lag += end - read
		}
	}
	return lag
}
