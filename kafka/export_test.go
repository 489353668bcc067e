package kafka

import "time"

// CPUTime is cpuTime for the external benchmarks.
var CPUTime = cpuTime

// OpenOffsetTxn is openOffsetTxn for the external tests.
var OpenOffsetTxn = openOffsetTxn

// OpenOffsetTxnAs is openOffsetTxnAs for the external tests.
var OpenOffsetTxnAs = openOffsetTxnAs

// WithJoinDelay delays the first group join of the exchange's consumer by d (joindelay.go),
// as a consumer that joins after the input's first batches.
func WithJoinDelay(d time.Duration) ExchangeOption {
	return exchangeOpt(func(o *exchangeOptions) { o.joinDelay = d })
}

// PausedClaims returns how many of the Source's claims are paused (their hold is full).
func (s *Source[T]) PausedClaims() int {
	n := 0
	for _, ps := range s.pausedClaims() {
		n += len(ps)
	}
	return n
}
