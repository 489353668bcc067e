package opensearch

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Rejected is a document that will never be indexed as it is: OpenSearch refused it with a
// permanent item error (a mapping error, another 4xx), or the mapping function failed.
type Rejected struct {
	Index string
	ID    string
	// Doc is the JSON document as it was sent; nil when encoding failed.
	Doc []byte
	// Status is the item's HTTP status; 0 when encoding failed.
	Status int
	// Type is OpenSearch's error type (e.g. "mapper_parsing_exception"), or "encode_error".
	Type string
	// Reason is the error's reason, with the cause when there is one.
	Reason string
}

// DeadLetter receives rejected documents. The sink calls WriteDeadLetters at most once per
// Write, after the batch's other documents were indexed and before Write returns; an error
// fails that Write (the pipeline retries the batch, and the documents are written again with
// the same IDs). Implementations must be safe for concurrent use when one DeadLetter serves
// several sinks, and must not keep the slice after returning.
//
// The kafka package adapts its producer to this interface.
type DeadLetter interface {
	WriteDeadLetters(ctx context.Context, docs []Rejected) error
}

// DeadLetterFunc adapts a function to DeadLetter.
type DeadLetterFunc func(ctx context.Context, docs []Rejected) error

// WriteDeadLetters calls f.
func (f DeadLetterFunc) WriteDeadLetters(ctx context.Context, docs []Rejected) error {
	return f(ctx, docs)
}

// DiscardDeadLetters drops rejected documents; they are still counted in Stats.DeadLettered.
// Use it only where losing them is acceptable.
var DiscardDeadLetters DeadLetter = DeadLetterFunc(func(context.Context, []Rejected) error { return nil })

// JSONLines writes rejected documents as JSON lines:
//
//	{"time":"…","index":"…","id":"…","status":400,"type":"mapper_parsing_exception","reason":"…","doc":{…}}
//
// doc is the document itself when it is valid JSON, otherwise a string.
type JSONLines struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte
	// now is the clock for the time field.
	now func() time.Time
}

// NewJSONLines returns a DeadLetter that writes to w. Each WriteDeadLetters call does one
// Write on w.
func NewJSONLines(w io.Writer) *JSONLines { return &JSONLines{w: w, now: time.Now} }

// OpenJSONLinesFile opens (creating or appending to) a JSON-lines dead-letter file. Close it
// after the sinks that use it.
func OpenJSONLinesFile(path string) (*JSONLinesFile, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opensearch: dead-letter file: %w", err)
	}
	return &JSONLinesFile{JSONLines: NewJSONLines(f), f: f}, nil
}

// JSONLinesFile is a JSONLines dead-letter output on a file that is synced after each write.
type JSONLinesFile struct {
	*JSONLines
	f *os.File
}

// WriteDeadLetters appends docs to the file and syncs it, so an acknowledged batch's dead
// letters survive a crash.
func (f *JSONLinesFile) WriteDeadLetters(ctx context.Context, docs []Rejected) error {
	if err := f.JSONLines.WriteDeadLetters(ctx, docs); err != nil {
		return err
	}
	if err := f.f.Sync(); err != nil {
		return fmt.Errorf("opensearch: dead-letter file: %w", err)
	}
	return nil
}

// Close closes the file.
func (f *JSONLinesFile) Close() error { return f.f.Close() }

type deadLetterLine struct {
	Time   time.Time `json:"time"`
	Index  string    `json:"index,omitempty"`
	ID     string    `json:"id,omitempty"`
	Status int       `json:"status,omitempty"`
	Type   string    `json:"type,omitempty"`
	Reason string    `json:"reason"`
	Doc    any       `json:"doc,omitempty"`
}

// WriteDeadLetters writes one line per document.
func (j *JSONLines) WriteDeadLetters(ctx context.Context, docs []Rejected) error {
	if len(docs) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.buf = j.buf[:0]
	now := j.now().UTC()
	for _, d := range docs {
		l := deadLetterLine{Time: now, Index: d.Index, ID: d.ID, Status: d.Status, Type: d.Type, Reason: d.Reason}
		switch {
		case d.Doc == nil:
		case json.Valid(d.Doc):
			l.Doc = json.RawMessage(d.Doc)
		default:
			l.Doc = string(d.Doc)
		}
		b, err := json.Marshal(l)
		if err != nil {
			return fmt.Errorf("opensearch: dead letter: %w", err)
		}
		j.buf = append(j.buf, b...)
		j.buf = append(j.buf, '\n')
	}
	if _, err := j.w.Write(j.buf); err != nil {
		return fmt.Errorf("opensearch: dead letter: %w", err)
	}
	return nil
}
