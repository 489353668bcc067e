// The status page's partition table: each partition's read, committed and end offsets and
// the lags between them, named after the source's topic partitions.

package prom

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fleetstream/fleetstream/stream"
)

// partitionTable joins the live partitions' positions and the committed offsets (by
// partition id) with the sources' commit lags, read offsets and ends (by name: the last
// batch's, or live ones, see sourceVals), sorted by name; m.mu is held.
func (m *Metrics) partitionTable(now time.Time, src sourceVals) []PartitionDoc {
	name := m.cfg.partitionName
	if name == nil {
		name = defaultPartitionName(src.lag)
	}
	rows := make(map[string]*PartitionDoc)
	row := func(n string) *PartitionDoc {
		n = labelValue(n)
		r, ok := rows[n]
		if !ok {
			r = &PartitionDoc{Name: n}
			rows[n] = r
		}
		return r
	}
	for n, l := range src.lag {
		row(n).CommitLag = &l
	}
	for id, off := range m.committed {
		row(name(id)).Committed = &off
	}
	for _, p := range m.parts {
		r := row(name(p.Partition))
		idle := p.Idle
		r.Idle, r.Ended = &idle, p.Ended
		if p.Next >= 0 {
			next := p.Next
			r.Read = &next
		}
		if !p.Watermark.IsZero() {
			wm := p.Watermark
			lag, _ := eventLag(now, wm)
			ms := float64(lag) / float64(time.Millisecond)
			r.Watermark, r.EventTimeLagMs = &wm, &ms
		}
	}
	// The source's own read offsets: ahead of the pipeline's by the records in its input and
	// the offsets it dead-lettered after the last record it pushed, which are read too.
	for n, off := range src.read {
		if off < 0 {
			continue // not known (a source reports -1 before it reads anything)
		}
		if r, ok := rows[n]; ok && (r.Read == nil || off > *r.Read) {
			r.Read = &off
		}
	}
	out := make([]PartitionDoc, 0, len(rows))
	for _, r := range rows {
		if end, ok := src.end[r.Name]; ok {
			r.End = &end
		} else if r.Committed != nil && r.CommitLag != nil {
			end := *r.Committed + *r.CommitLag
			r.End = &end
		}
		// commit lag = read lag + held back (read, not committed). The source's lag and the
		// pipeline's positions are taken at slightly different moments (the high-water mark
		// of the last fetch), hence the bounds at 0.
		_, srcEnd := src.end[r.Name]
		switch {
		case r.Read == nil && r.Committed == nil && r.End != nil && *r.End == 0:
			var zero int64 // an empty partition, nothing read: nothing to read either
			r.ReadLag, r.HeldBack = &zero, &zero
		case r.Read == nil:
		case srcEnd && r.CommitLag != nil:
			read := max(0, *r.End-*r.Read)
			held := max(0, *r.CommitLag-read)
			r.ReadLag, r.HeldBack = &read, &held
		case r.Committed != nil:
			held := max(0, *r.Read-*r.Committed)
			r.HeldBack = &held
			if r.CommitLag != nil {
				read := max(0, *r.CommitLag-held)
				r.ReadLag = &read
			}
		}
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b PartitionDoc) int { return comparePartitions(a.Name, b.Name) })
	return out
}

// defaultPartitionName names the first source's partition ids as the lags name their
// partitions when they all belong to one topic ("topic/3"; a single-topic Kafka source's ids
// are its partitions), and "partition 3" otherwise. The ids of further sources (another From,
// a repartition's exchange) are named "source 1 partition 3", never after the first's topic.
func defaultPartitionName(lag map[string]int64) func(int32) string {
	topic := ""
	for n := range lag {
		i := strings.LastIndexByte(n, '/')
		if i < 0 || (topic != "" && n[:i] != topic) {
			topic = ""
			break
		}
		topic = n[:i]
	}
	return func(id int32) string {
		src, part := stream.PartitionSource(id)
		switch {
		case src > 0:
			return "source " + strconv.Itoa(src) + " partition " + strconv.Itoa(int(part))
		case topic == "":
			return "partition " + strconv.Itoa(int(id))
		}
		return topic + "/" + strconv.Itoa(int(id))
	}
}

// comparePartitions orders "t/2" before "t/10".
func comparePartitions(a, b string) int {
	ia, ib := strings.LastIndexAny(a, "/ "), strings.LastIndexAny(b, "/ ")
	if ia >= 0 && ib >= 0 && a[:ia] == b[:ib] {
		na, ea := strconv.Atoi(a[ia+1:])
		nb, eb := strconv.Atoi(b[ib+1:])
		if ea == nil && eb == nil {
			return na - nb
		}
	}
	return strings.Compare(a, b)
}
