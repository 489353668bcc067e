// Static group membership (Config.Rebalance.InstanceID): one id per Source of the process,
// and what a Source does when another process fences it.

package kafka

import (
	"errors"
	"fmt"
	"sync"
)

// ErrFencedInstance is wrapped by the error that stops a Source whose static group member
// (Config.Rebalance.InstanceID) was fenced: another process joined the group with the same
// instance id. Rejoining would fence that one in turn, and the two would take the
// partitions from each other for ever; every instance needs an id of its own.
var ErrFencedInstance = errors.New("kafka: fenced: another member joined the group with this group instance id")

// fenced returns the error that stops the Source after its member was fenced.
func (s *Source[T]) fenced(err error) error {
	return fmt.Errorf("%w: %q in group %q (Config.Rebalance.InstanceID): give every instance an id of its own: %w",
		ErrFencedInstance, s.cfg.Rebalance.InstanceID, s.cfg.Group, err)
}

// instances are the group instance ids that Sources of this process run with, by group.
var instances sync.Map // groupInstance → struct{}

type groupInstance struct{ group, id string }

// claimInstance registers a running Source's group instance id, or fails when another Source
// of this process runs with it: the two would fence each other at every join.
func claimInstance(group, id string) (release func(), err error) {
	k := groupInstance{group, id}
	if _, taken := instances.LoadOrStore(k, struct{}{}); taken {
		return nil, invalid("Rebalance.InstanceID", "%q: another Source of this process runs in group %q with it; "+
			"each Source is a member of its own (an Exchange adds its name to the id itself)", id, group)
	}
	return func() { instances.Delete(k) }, nil
}
