// The inputs of a repartition's upstream sources: InputIdentifier, ErrInputChanged and the
// hashes of the inputs' names that every repartition checkpoint records (see "Repartition" in
// the package documentation; the check is in shuffle.restore).

package stream

import (
	"errors"
	"hash/fnv"
)

// InputIdentifier is implemented by sources that can name the inputs they read, such as a
// Kafka Source's topics, in the order in which their partition ids number them (the k-th
// input's partitions have the ids of the k-th). A repartition's committed state numbers each
// upstream record by its upstream partition and offset, and those numbers mean something only
// for the input that made them: a repartition checkpoint records a hash of each upstream
// input's name, and a run whose upstream source names another input at the same place stops
// with ErrInputChanged instead of dropping the new input's records as copies of the old one's
// (see "Repartition"). An input added at the end is new; one left out at the end is no longer
// read.
type InputIdentifier interface {
	InputIdentity() []string
}

// ErrInputChanged is wrapped by the error that stops a pipeline whose repartition's committed
// state was made from another input than its upstream source reads now.
var ErrInputChanged = errors.New("stream: a repartition's committed state belongs to another input")

// inputRef is the k-th input of upstream source src (InputIdentifier).
type inputRef struct{ src, k int }

// identities returns the hashes of the names of the upstream sources' inputs, for the sources
// that name them (InputIdentifier).
func (sh *shuffle[T]) identities() map[inputRef]uint64 {
	if sh.inputs == nil {
		sh.inputs = make(map[inputRef]uint64)
		if sh.in == nil {
			return sh.inputs // a bare shuffle of a unit test
		}
		for _, si := range sh.ups {
			for k, name := range sh.in.p.srcs[si].identity() {
				h := fnv.New64a()
				h.Write([]byte(name))
				sh.inputs[inputRef{si, k}] = h.Sum64()
			}
		}
	}
	return sh.inputs
}
