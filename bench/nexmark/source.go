// The in-memory source.

package nexmark

import (
	"context"

	"github.com/fleetstream/fleetstream/stream"
)

// Source is a stream.Source that pushes a Generator's events, all in partition 0, with their
// event times and offsets 0, 1, 2, ...; its input ends after the last event.
//
// One partition, because the engine keeps window state per source partition: with every
// event in one partition the queries' results are global, as in Nexmark, not per partition.
//
// Event times start at Config.BaseTime (by default in 2020) and advance by 1/Rate per event,
// so a large run at a high rate can run ahead of the pipeline's clock; run the pipeline with
// stream.WithMaxFutureEventTime(0) (as Run does) so that its watermark follows the events.
// The source does not call Input.CheckEventTime: the generator's times are valid by
// construction.
type Source struct {
	cfg Config
}

var _ stream.Source[Event] = (*Source)(nil)

// NewSource returns a source of cfg's events.
func NewSource(cfg Config) *Source { return &Source{cfg: cfg} }

// pushChunk is how many records the source generates before it pushes them in one
// TryPushBatch, which takes the input's lock once.
const pushChunk = 4096

// Run generates the events and pushes them, waiting while the input is full.
func (s *Source) Run(ctx context.Context, in *stream.Input[Event]) error {
	g := NewGenerator(s.cfg)
	recs := make([]stream.Record[Event], 0, pushChunk)
	var off int64
	for {
		recs = recs[:0]
		for len(recs) < pushChunk {
			e, ok := g.Next()
			if !ok {
				break
			}
			recs = append(recs, stream.Record[Event]{Value: e, Offset: off, EventTime: e.Time(), Size: size(&e)})
			off++
		}
		if len(recs) == 0 {
			return nil
		}
		for pending := recs; len(pending) > 0; {
			space := in.Space() // before TryPushBatch, so a drain in between is not missed
			n := in.TryPushBatch(pending)
			pending = pending[n:]
			if n == 0 {
				select {
				case <-space:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
		}
		clear(recs) // drop the persons and auctions the records point to
	}
}

// Commit does nothing: the events can be generated again from the Config.
func (s *Source) Commit(context.Context, []stream.Position) error { return nil }
