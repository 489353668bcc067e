// Side outputs: the second outputs of an Operator (Flink's side outputs).

package stream

import "fmt"

// SideOutput is a second output of an Operator: values its Process emits beside the elements
// it returns, such as the alerts and dead letters of a tracker whose output is the events it
// follows. Splitting one output of mixed values by Filters takes a pass over every element
// for each reader; a side output costs nothing for the elements that do not go to it.
//
// Make it with NewSideOutput on the stream Apply returned, before the pipeline runs, and give
// it to the operator, whose Process alone calls Emit. Its stream is like a Filter of the
// operator's output to the emitted values: stateless, of the operator's slide, read in the
// same batch and partition as the operator's output, its elements carrying the event time and
// offset Emit gave them (the input record's, as for the operator's output), so that replays,
// commits and watermarks treat a stateful reader of it as a reader of the operator through a
// Filter (TestSideOutputCrashReplaySweep). It is not the operator's output, though, which the
// operator's optional interfaces speak for: RepartitionByTime refuses it, even of a
// TimeOrderer (TestRepartitionByTimeOfSideOutputRefused).
type SideOutput[T any] struct {
	s   *Stream[T]
	of  string // the operator's name
	buf []Elem[T]
	// open is set while the operator's Process runs, the only time Emit may be called.
	open bool
}

// NewSideOutput adds a side output named name to the Operator whose stream of is (the stream
// Apply returned). Any other stream is a graph error (see Pipeline.Err): nothing else would
// emit to it.
func NewSideOutput[T, Out any](of *Stream[Out], name string) *SideOutput[T] {
	o := &SideOutput[T]{of: of.name}
	if _, ok := of.state.(interface{ operator() }); !ok {
		of.p.fail(graphError("NewSideOutput %q: %q is not a stream that Apply returned", name, of.name))
	} else {
		process := of.fn
		of.fn = func(pc *PartitionContext, out []Elem[Out]) []Elem[Out] {
			o.open = true
			defer func() { o.open = false }()
			return process(pc, out)
		}
	}
	// Within a batch the pipeline runs each partition through the operators in the order
	// they were created (see Operator), so the side output, created after its operator, takes
	// what Process emitted for the partition before the next partition's Process runs.
	o.s = derive(of, name, func(_ *PartitionContext, _ []Elem[Out], out []Elem[T]) []Elem[T] {
		out = append(out, o.buf...)
		clear(o.buf)
		o.buf = reuse(o.buf)
		return out
	})
	o.s.sideOf = of.name
	return o
}

// Stream returns the side output's stream.
func (o *SideOutput[T]) Stream() *Stream[T] { return o.s }

// Emit adds e to the side output in the batch and partition that the operator is processing.
// Only the operator's Process may call it: called at any other time (from Drop, or another
// goroutine), the value would go out with the next partition's, so Emit panics, naming the
// operator. e.Time is the value's event time and e.Offset the source offset of the input
// record it comes from (Elem), as for the elements Process returns.
func (o *SideOutput[T]) Emit(e Elem[T]) {
	if !o.open {
		panic(fmt.Sprintf("stream: SideOutput.Emit of %q called outside the operator's Process", o.of))
	}
	o.buf = append(o.buf, e)
}
