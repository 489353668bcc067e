package stream

import "strings"

// RepartitionHistLen returns how many entries the repartitions' downstream partitions keep
// for their next checkpoints (downPart.hist), summed.
func RepartitionHistLen(p *Pipeline) int {
	n := 0
	for _, sh := range p.shuffles {
		if s, ok := sh.(interface{ histLen() int }); ok {
			n += s.histLen()
		}
	}
	return n
}

func (sh *shuffle[T]) histLen() int {
	n := 0
	for _, d := range sh.parts {
		n += len(d.hist)
	}
	return n
}

// MarkState is an upstream partition's entry in the marks of a repartition's checkpoint.
type MarkState struct {
	Seq     int64 // the highest number kept (with Sub), if Has
	Sub     int32
	Has     bool
	MarkSeq int64 // Seq of the newest mark applied, -1 if none
	WM      int64 // its watermark
}

// RepartitionMarks decodes the marks in a repartition partition's committed checkpoint
// (Position.Meta), by upstream partition, and the fire watermark kept with them; a nil map
// if it has none.
func RepartitionMarks(meta string) (map[int32]MarkState, int64, error) {
	_, enc, ok := strings.Cut(meta, markSep)
	if !ok {
		return nil, NoWatermark, nil
	}
	enc, fired, err := cutFired(enc)
	if err != nil {
		return nil, NoWatermark, err
	}
	m, err := decodeMarks(enc)
	if err != nil {
		return nil, NoWatermark, err
	}
	out := make(map[int32]MarkState, len(m.up))
	for from, u := range m.up {
		out[from] = MarkState{Seq: u.seq, Sub: u.sub, Has: u.has, MarkSeq: u.markSeq, WM: u.wm}
	}
	return out, fired, nil
}
