// The tracker's replay bookkeeping: what it retains per partition (holds), the marks where a
// replay could start (stream.ReplayStarter), dropping a revoked partition, and its size
// (stream.StateReporter).

package telemetry

import (
	"math"
	"unsafe"

	"github.com/fleetstream/fleetstream/stream"
)

// hold says that commits must not land in (lo, hi]: a replay starting there
// would take the event at hi for a cab's first, and annotate it differently.
type hold struct{ lo, hi int64 }

// mark says that a replay from start gives the output from the record at at
// on: the retained offset before that record.
type mark struct{ at, start int64 }

// Retained returns the oldest offset any cab's state depends on, moved back
// out of every hold it falls in.
func (tr *tracker) Retained(part int32) (int64, bool) {
	tp := tr.parts[part]
	if tp == nil {
		return 0, false
	}
	return tp.retained()
}

// holdBack adds the hold (lo, hi], hi not below the holds' his, merged into the
// latest hold when that has the same lo.
func (tp *trackPart) holdBack(lo, hi int64) {
	if n := len(tp.holds); n > 0 && tp.holds[n-1].lo == lo {
		tp.holds[n-1].hi = max(tp.holds[n-1].hi, hi)
		return
	}
	tp.holds = append(tp.holds, hold{lo, hi})
}

func (tp *trackPart) retained() (int64, bool) {
	m := int64(math.MaxInt64)
	for _, c := range tp.cabs {
		m = min(m, c.anchor())
	}
	// Holds are sorted by hi; walking back, each one that m falls in moves m
	// to its lo, which may fall in an older one.
	for i := len(tp.holds) - 1; i >= 0; i-- {
		h := tp.holds[i]
		if h.hi < m {
			break
		}
		if h.lo < m {
			m = h.lo
		}
	}
	// Holds entirely before m can never matter again: m only moves forward.
	k := 0
	for k < len(tp.holds) && tp.holds[k].hi < m {
		k++
	}
	tp.holds = append(tp.holds[:0], tp.holds[k:]...)
	if m == math.MaxInt64 {
		return 0, false
	}
	return m, true
}

// ReplayStart implements stream.ReplayStarter from the marks Process left
// every markEvery records: zone demand counts the tracker's events from its
// own, older, replay position.
func (tr *tracker) ReplayStart(part int32, from int64) (start, at int64, ok bool) {
	tp := tr.parts[part]
	if tp == nil {
		return 0, 0, false
	}
	i := len(tp.marks) - 1
	for i >= 0 && tp.marks[i].at > from {
		i--
	}
	if i < 0 {
		return 0, 0, false
	}
	m := tp.marks[i]
	tp.marks = append(tp.marks[:0], tp.marks[i:]...)
	return m.start, m.at, true
}

func (tr *tracker) Drop(part int32) {
	if tp := tr.parts[part]; tp != nil {
		tr.cabs -= len(tp.cabs)
		tr.cabsHeld.Store(int64(tr.cabs))
		delete(tr.parts, part)
	}
}

// StateSize returns the number of cabs held, over all partitions.
func (tr *tracker) StateSize() int { return tr.cabs }

// ReportState implements stream.StateReporter: no windows, the events of new cabs refused by
// WithMaxCabs (KeyLimit), and the bytes held, estimated without walking the cabs: per cab
// its 128-byte state, its map entry (a string header and a pointer, a control byte, at 7/8
// load) and its ID's bytes (a running sum), plus the partitions' holds and marks by
// capacity, and the entries of the cabs whose last event came out of order. The 48 bytes of
// a pending GPS jump are not counted.
func (tr *tracker) ReportState(st *stream.OperatorState) {
	const (
		perCab     = int64(unsafe.Sizeof(cabState{})) + (int64(unsafe.Sizeof(""))+int64(unsafe.Sizeof(&cabState{}))+1)*8/7
		perArrival = (int64(unsafe.Sizeof("")) + int64(unsafe.Sizeof(arrival{})) + 1) * 8 / 7
	)
	n := int64(unsafe.Sizeof(*tr)) + int64(tr.cabs)*perCab + int64(cap(tr.fired))*int64(unsafe.Sizeof(silentCab{}))
	for _, tp := range tr.parts {
		n += int64(unsafe.Sizeof(*tp)) + tp.idBytes + int64(len(tp.arrived))*perArrival +
			int64(cap(tp.holds))*int64(unsafe.Sizeof(hold{})) + int64(cap(tp.marks))*int64(unsafe.Sizeof(mark{}))
	}
	st.Bytes = n
	st.KeyLimit = tr.limited.Load()
}
