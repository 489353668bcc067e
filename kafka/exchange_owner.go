// An Exchange's check, when it opens, that no other consumer group uses its repartition
// topic (ErrRepartitionInUse).

package kafka

import (
	"cmp"
	"fmt"
	"slices"
	"sync"

	"github.com/IBM/sarama"
)

// checkOwner fails when another consumer group than the pipeline's has committed offsets of
// the repartition topic: two pipelines with the same name (the topic is named after it) but
// different groups would each read the other's records, and the dedup (by upstream
// partition and offset) would mix two unrelated inputs. Kafka Streams avoids it by naming
// the topic after the application id; here the name and the group are separate settings.
//
// Kafka cannot say which groups committed offsets of a topic: the check lists the cluster's
// groups and fetches their offsets, which on a shared cluster means thousands of requests.
// It does so only when it can tell nothing cheaper: a topic this Open created (created) has no
// group's offsets yet, and one that the pipeline's group has committed offsets of was
// checked when the group first opened it, before its first commit, so that a group that
// came after that commit was refused by its own check. (Two groups that first open the topic
// at the same moment can both pass, as before: neither had committed.) Only consumer
// groups' offsets are fetched, a few at a time; those it may not read (the ACLs: Describe on
// the group) are named in one warning, and without Describe on the cluster the brokers list
// only the groups the principal may describe: the check covers what it can see.
func (e *Exchange[T]) checkOwner(client sarama.Client, parts int32, created bool) error {
	if created {
		return nil
	}
	ps := make([]int32, parts)
	for i := range ps {
		ps[i] = int32(i)
	}
	want := map[string][]int32{e.topic: ps}
	if own, err := groupOffsets(client, e.cfg.Group, want); err == nil && len(own) > 0 {
		return nil
	}
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		return fmt.Errorf("kafka: exchange %q: admin: %w", e.topic, redact(&e.cfg, err))
	}
	// admin shares client: closing it would close the client too.
	groups, err := admin.ListConsumerGroups()
	if err != nil {
		return fmt.Errorf("kafka: exchange %q: consumer groups: %w", e.topic, redact(&e.cfg, err))
	}
	var others []string
	for g, protocol := range groups {
		// Only a consumer group commits offsets: not Kafka Connect's workers ("connect"),
		// say. "" is a group that has only committed offsets, never joined.
		if g != e.cfg.Group && (protocol == "consumer" || protocol == "") {
			others = append(others, g)
		}
	}
	slices.Sort(others)
	type found struct {
		owns bool
		err  error
	}
	results := make([]found, len(others))
	sem := make(chan struct{}, ownerFetches)
	var wg sync.WaitGroup
	for i, g := range others {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			offs, err := groupOffsets(client, g, want)
			results[i] = found{len(offs) > 0, err}
		})
	}
	wg.Wait()
	var unread []string
	var firstErr error
	refused := false
	for i, r := range results {
		switch {
		case r.owns:
			return fmt.Errorf("%w: topic %q already holds the records of consumer group %q, and this pipeline's group is %q: "+
				"give each pipeline its own name (the topic is <name>-<repartition>-repartition), or run it in group %q",
				ErrRepartitionInUse, e.topic, others[i], e.cfg.Group, others[i])
		case r.err != nil:
			unread = append(unread, others[i])
			firstErr = cmp.Or(firstErr, r.err)
			refused = refused || isNotAuthorized(r.err)
		}
	}
	if len(unread) > 0 {
		attrs := []any{"groups", len(unread), "names", unread[:min(len(unread), 10)], "err", redact(&e.cfg, firstErr)}
		if refused {
			attrs = append(attrs, "grant", "Describe on those groups to the pipeline's principal, to check them")
		}
		e.log.Warn("kafka: exchange: could not read the committed offsets of other consumer groups; whether they used the topic was not checked", attrs...)
	}
	return nil
}

// ownerFetches is how many groups' offsets checkOwner fetches at a time.
const ownerFetches = 8
