// Codecs: how values leave the process (a repartition's topic) and come back.

package stream

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
)

// Codec turns values into bytes and back, for transports that leave the process, such as a
// repartition's Kafka topic (kafka.NewExchange). Append appends v's encoding to dst; Decode
// reads a value from exactly the bytes Append wrote. Codecs are called from one goroutine at a
// time per exchange.
type Codec[T any] interface {
	Append(dst []byte, v T) ([]byte, error)
	Decode(b []byte) (T, error)
}

// JSONCodec returns the generic codec: encoding/json, for any type it handles. It costs
// reflection and an allocation or more per value (about a microsecond for a small struct),
// and unexported fields are lost; hot paths use a codec of their own (telemetry provides
// binary codecs for its types).
func JSONCodec[T any]() Codec[T] { return jsonCodec[T]{} }

type jsonCodec[T any] struct{}

func (jsonCodec[T]) Append(dst []byte, v T) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return dst, err
	}
	return append(dst, b...), nil
}

func (jsonCodec[T]) Decode(b []byte) (T, error) {
	var v T
	err := json.Unmarshal(b, &v)
	return v, err
}

// StringCodec is the codec of strings: their bytes.
type StringCodec struct{}

// Append implements Codec.
func (StringCodec) Append(dst []byte, v string) ([]byte, error) { return append(dst, v...), nil }

// Decode implements Codec.
func (StringCodec) Decode(b []byte) (string, error) { return string(b), nil }

// PairCodec returns the codec of pairs from the codecs of their key and value: the key's
// length as a uvarint, the key, then the value.
func PairCodec[K comparable, V any](key Codec[K], value Codec[V]) Codec[Pair[K, V]] {
	return pairCodec[K, V]{key, value}
}

type pairCodec[K comparable, V any] struct {
	k Codec[K]
	v Codec[V]
}

// errShort is returned for an encoding cut short.
var errShort = errors.New("stream: pair codec: encoding cut short")

func (c pairCodec[K, V]) Append(dst []byte, p Pair[K, V]) ([]byte, error) {
	// Encode the key after a 10-byte gap for its length, then close the gap.
	start := len(dst)
	dst = append(dst, make([]byte, binary.MaxVarintLen64)...)
	dst, err := c.k.Append(dst, p.Key)
	if err != nil {
		return dst[:start], fmt.Errorf("key: %w", err)
	}
	klen := len(dst) - start - binary.MaxVarintLen64
	var hdr [binary.MaxVarintLen64]byte
	n := binary.PutUvarint(hdr[:], uint64(klen))
	copy(dst[start+n:], dst[start+binary.MaxVarintLen64:])
	copy(dst[start:], hdr[:n])
	dst = dst[:start+n+klen]
	dst, err = c.v.Append(dst, p.Value)
	if err != nil {
		return dst[:start], fmt.Errorf("value: %w", err)
	}
	return dst, nil
}

func (c pairCodec[K, V]) Decode(b []byte) (Pair[K, V], error) {
	var p Pair[K, V]
	klen, n := binary.Uvarint(b)
	if n <= 0 || uint64(len(b)-n) < klen {
		return p, errShort
	}
	k, err := c.k.Decode(b[n : n+int(klen)])
	if err != nil {
		return p, fmt.Errorf("key: %w", err)
	}
	v, err := c.v.Decode(b[n+int(klen):])
	if err != nil {
		return p, fmt.Errorf("value: %w", err)
	}
	return Pair[K, V]{Key: k, Value: v}, nil
}
