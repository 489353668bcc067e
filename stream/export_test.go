package stream

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
