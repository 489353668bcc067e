// Outputs: the Sink and Closer contracts, SinkFunc, and the output operations ForEachBatch
// and To.

package stream

import (
	"context"
	"fmt"
	"slices"
)

// Sink is an output that writes batches somewhere: OpenSearch, Kafka, a file. Write is called
// once per batch from the run loop with every value the batch produced (all partitions), and
// must return only once the values are durably written, or an error. Write is retried with the
// same values while it returns an error not marked Permanent, so it must be idempotent (write
// with deterministic ids). Write may not keep batch after it returns.
type Sink[T any] interface {
	Write(ctx context.Context, batch []T) error
}

// Closer is implemented by sinks that hold resources; the pipeline calls Close once when Run
// returns.
type Closer interface {
	Close(ctx context.Context) error
}

// SinkFunc adapts a function to a Sink.
type SinkFunc[T any] func(ctx context.Context, batch []T) error

// Write calls f.
func (f SinkFunc[T]) Write(ctx context.Context, batch []T) error { return f(ctx, batch) }

type forEach[T any] struct {
	name  string // OutputName's, or empty
	s     *Stream[T]
	fn    func(ctx context.Context, info BatchInfo, batch []T) error
	vals  []T
	valid bool
	run   func(pc *PartitionContext) // set when the stream runs fused into this output
	sink  any
}

// ForEachBatch is the output operation: fn is called once per batch in which the stream has
// data (every batch, or every slide for windowed streams), with the values of all partitions,
// even when there are none. The batch is acknowledged only after every output returned nil;
// a failed output is retried under the pipeline's retry policy with the same values, and the
// outputs that already succeeded are not called again. fn must not keep batch.
func ForEachBatch[T any](s *Stream[T], fn func(ctx context.Context, info BatchInfo, batch []T) error, opts ...OutputOption) {
	addOutput(s, &forEach[T]{s: s, fn: fn}, opts)
}

// To writes the stream to a sink (an output operation, like ForEachBatch). If the sink
// implements Closer, the pipeline closes it when Run returns.
func To[T any](s *Stream[T], sink Sink[T], opts ...OutputOption) {
	addOutput(s, &forEach[T]{
		s:    s,
		fn:   func(ctx context.Context, _ BatchInfo, batch []T) error { return sink.Write(ctx, batch) },
		sink: sink,
	}, opts)
}

// OutputOption configures an output operation (To, ForEachBatch).
type OutputOption interface{ applyOutput(*outputConfig) }

type outputConfig struct {
	name string
	set  bool
}

type outputNameOption string

func (o outputNameOption) applyOutput(c *outputConfig) { c.name, c.set = string(o), true }

// OutputName names the output in BatchStats.Outputs, and so in the logs and metrics made from
// them: the index, topic or table it writes, say. Names need not be unique, but two outputs of
// one name are told apart only by their order. Without it, an output is named after its place
// among the pipeline's outputs and the stream it writes ("output 2 (map)").
func OutputName(name string) OutputOption { return outputNameOption(name) }

func addOutput[T any](s *Stream[T], f *forEach[T], opts []OutputOption) {
	var c outputConfig
	for _, o := range opts {
		if o != nil {
			o.applyOutput(&c)
		}
	}
	if c.set && c.name == "" {
		s.p.fail(invalid("OutputName: empty name"))
	}
	f.name = c.name
	if f.name == "" {
		f.name = fmt.Sprintf("output %d (%s)", len(s.p.outputs), s.name)
	}
	s.p.outputs = append(s.p.outputs, f)
}

func (f *forEach[T]) outputName() string { return f.name }

func (f *forEach[T]) outValues() int { return len(f.vals) }

func (f *forEach[T]) input() int { return f.s.idx }

func (f *forEach[T]) plan(fused bool) {
	f.run = nil
	if fused {
		f.run = f.s.through(f.add)
	}
}

func (f *forEach[T]) collect(pc *PartitionContext) {
	if pc.Batch%f.s.slide != 0 {
		return
	}
	f.valid = true
	if f.run != nil {
		f.run(pc)
		return
	}
	f.add(f.s.cur)
}

func (f *forEach[T]) add(es []Elem[T]) {
	n := len(f.vals)
	f.vals = slices.Grow(f.vals, len(es))[:n+len(es)]
	for i := range es {
		f.vals[n+i] = es[i].Value
	}
}

func (f *forEach[T]) flush(ctx context.Context, info BatchInfo) error {
	if !f.valid && info.Batch%f.s.slide != 0 {
		return nil
	}
	return f.fn(ctx, info, f.vals)
}

func (f *forEach[T]) reset() {
	clear(f.vals)
	f.vals = reuse(f.vals)
	f.valid = false
}

func (f *forEach[T]) close(ctx context.Context) error {
	if c, ok := f.sink.(Closer); ok {
		return c.Close(ctx)
	}
	return nil
}
