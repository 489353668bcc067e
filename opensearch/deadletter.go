// Dead letters of the sink: the rejected and encode letters, DiscardDeadLetters, and the
// JSON-lines dead-letter outputs JSONLines and JSONLinesFile.

package opensearch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"
	"unicode/utf8"

	"github.com/fleetstream/fleetstream/stream"
)

// Dead letters of the sink are stream.DeadLetter values. A document OpenSearch refused for
// good has Reason stream.ReasonRejected, Err "<error type>: <reason>" as OpenSearch gave them
// (e.g. "mapper_parsing_exception: failed to parse field [distance_km] ..."), Status the
// item's (or, for a document isolated from a request refused whole, the request's) HTTP
// status, Index, ID (as sent, see docid bounds in the package doc) and Value the document's
// JSON. A value that could not be made into a valid document has Reason stream.ReasonEncode,
// Status 0, and Value a best-effort rendering of it (see the package doc, # Dead letters).
// Topic is empty and Offset -1: a document is not one source record.

func rejectedLetter(index, id string, doc []byte, status int, typ, reason string) stream.DeadLetter {
	msg := reason
	if typ != "" {
		msg = typ + ": " + reason
	}
	return stream.DeadLetter{Reason: stream.ReasonRejected, Err: msg, Offset: -1, Index: index, ID: id, Status: status, Value: doc}
}

func encodeLetter(index, id string, doc []byte, msg string) stream.DeadLetter {
	return stream.DeadLetter{Reason: stream.ReasonEncode, Err: msg, Offset: -1, Index: index, ID: id, Value: doc}
}

// DiscardDeadLetters drops dead letters; they are still counted in Stats.DeadLettered. Use it
// only where losing them is acceptable.
var DiscardDeadLetters stream.DeadLetterSink = stream.DeadLetterFunc(func(context.Context, []stream.DeadLetter) error { return nil })

// JSONLines is a dead-letter output (a stream.DeadLetterSink) that writes one JSON object per
// dead letter and line:
//
//	{"time":"…","reason":"rejected","err":"mapper_parsing_exception: …","index":"…","id":"…","status":400,"value":{…}}
//
// time is when the line was written, and timestamp the record's time in its source, both in
// RFC 3339 (UTC; a timestamp past the year 9999 with all the year's digits). Fields that are
// empty are left out; topic, partition and offset appear together when the dead letter has a
// topic. key and value hold the bytes
// as JSON when they are valid JSON (which includes valid UTF-8), otherwise key_text/value_text
// hold them as a string when they are valid UTF-8, otherwise key_base64/value_base64 as
// base64. Header values follow the same rule (value, value_text or value_base64). A Write
// that fails after part of its bytes were written (a full disk) leaves a line cut short; the
// next Write ends it before its own lines, so the letters written again are whole lines (a
// reader skips the cut one).
//
// Write returns ctx's error when ctx ends before w's Write returns (a FIFO or pipe that
// nobody reads): its letters are not acknowledged, and the caller writes them again. That
// write to w goes on; the next Write waits for it, as long as its own ctx allows, and ends
// the line it may have cut short before its own lines.
type JSONLines struct {
	// turn holds a token while a Write builds its lines and its write to w is under way,
	// which may outlast the Write: the next one waits for it, so lines never interleave.
	turn chan struct{}
	w    io.Writer
	buf  []byte
	// cut is set when a Write failed after part of its bytes reached w: the last line has
	// no end, and the next Write ends it first.
	cut bool
	// now is the clock for the time field.
	now func() time.Time
}

var _ stream.DeadLetterSink = (*JSONLines)(nil)

// NewJSONLines returns a dead-letter output that writes to w. Each Write call does one Write
// on w.
func NewJSONLines(w io.Writer) *JSONLines {
	return &JSONLines{turn: make(chan struct{}, 1), w: w, now: time.Now}
}

// OpenJSONLinesFile opens (creating or appending to) a JSON-lines dead-letter file. Close it
// after the sinks that use it. A last line that a crash cut short (a write never
// acknowledged, whose letters the pipeline writes again) is ended before the first new line.
func OpenJSONLinesFile(path string) (*JSONLinesFile, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
	readable := err == nil
	if errors.Is(err, fs.ErrPermission) {
		// Writable, not readable: its last line cannot be checked.
		f, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	}
	if err != nil {
		return nil, fmt.Errorf("opensearch: dead-letter file: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("opensearch: dead-letter file: %w", err)
	}
	j := NewJSONLines(f)
	if readable {
		if j.cut, err = tornTail(f, st); err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("opensearch: dead-letter file: %w", err)
		}
	}
	// A pipe, socket or terminal cannot be synced (fsync fails with EINVAL), and holds
	// nothing a crash could lose once written.
	noSync := st.Mode()&(fs.ModeNamedPipe|fs.ModeSocket|fs.ModeCharDevice) != 0
	return &JSONLinesFile{JSONLines: j, f: f, noSync: noSync}, nil
}

// tornTail reports whether f, of which st is the file info, holds bytes after its last
// newline.
func tornTail(f *os.File, st fs.FileInfo) (bool, error) {
	if st.Size() == 0 || !st.Mode().IsRegular() {
		return false, nil
	}
	var last [1]byte
	if _, err := f.ReadAt(last[:], st.Size()-1); err != nil {
		return false, err
	}
	return last[0] != '\n', nil
}

// JSONLinesFile is a JSONLines dead-letter output on a file that is synced after each write
// (a FIFO, socket or terminal, which cannot be synced, is not).
type JSONLinesFile struct {
	*JSONLines
	f      *os.File
	noSync bool
}

var _ stream.DeadLetterSink = (*JSONLinesFile)(nil)

// Write appends the dead letters to the file and syncs it, so an acknowledged batch's dead
// letters survive a crash.
func (f *JSONLinesFile) Write(ctx context.Context, letters []stream.DeadLetter) error {
	if err := f.JSONLines.Write(ctx, letters); err != nil {
		return err
	}
	if f.noSync {
		return nil
	}
	if err := f.f.Sync(); err != nil {
		return fmt.Errorf("opensearch: dead-letter file: %w", err)
	}
	return nil
}

// Close closes the file.
func (f *JSONLinesFile) Close() error { return f.f.Close() }

type deadLetterLine struct {
	Time        time.Time       `json:"time"`
	Reason      string          `json:"reason"`
	Err         string          `json:"err,omitempty"`
	Topic       string          `json:"topic,omitempty"`
	Partition   *int32          `json:"partition,omitempty"`
	Offset      *int64          `json:"offset,omitempty"`
	Timestamp   *string         `json:"timestamp,omitempty"`
	Index       string          `json:"index,omitempty"`
	ID          string          `json:"id,omitempty"`
	Status      int             `json:"status,omitempty"`
	Key         json.RawMessage `json:"key,omitempty"`
	KeyText     *string         `json:"key_text,omitempty"`
	KeyBase64   []byte          `json:"key_base64,omitempty"`
	Value       json.RawMessage `json:"value,omitempty"`
	ValueText   *string         `json:"value_text,omitempty"`
	ValueBase64 []byte          `json:"value_base64,omitempty"`
	Headers     []headerLine    `json:"headers,omitempty"`
}

type headerLine struct {
	Key         string          `json:"key"`
	Value       json.RawMessage `json:"value,omitempty"`
	ValueText   *string         `json:"value_text,omitempty"`
	ValueBase64 []byte          `json:"value_base64,omitempty"`
}

// bytesField sets raw, text or b64 to b, as the JSONLines doc says.
func bytesField(b []byte, raw *json.RawMessage, text **string, b64 *[]byte) {
	switch {
	case len(b) == 0:
	case utf8.Valid(b) && json.Valid(b): // json.Valid does not check UTF-8
		*raw = json.RawMessage(b)
	case utf8.Valid(b):
		s := string(b)
		*text = &s
	default:
		*b64 = b
	}
}

// Write writes one line per dead letter.
func (j *JSONLines) Write(ctx context.Context, letters []stream.DeadLetter) error {
	if len(letters) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case j.turn <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := j.lines(letters); err != nil {
		<-j.turn
		return err
	}
	done := make(chan error, 1)
	go func() {
		n, err := j.w.Write(j.buf)
		switch {
		case err == nil:
			j.cut = false
		case n > 0:
			j.cut = n < len(j.buf)
		}
		<-j.turn
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("opensearch: dead letter: %w", err)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// lines sets j.buf to the lines of letters, after a newline that ends a line cut short.
func (j *JSONLines) lines(letters []stream.DeadLetter) error {
	j.buf = j.buf[:0]
	if j.cut {
		// End the line a failed Write cut short, so that the letters written again (the
		// batch's retry) are lines of their own, not glued to it.
		j.buf = append(j.buf, '\n')
	}
	now := j.now().UTC()
	for i := range letters {
		d := &letters[i]
		l := deadLetterLine{Time: now, Reason: d.Reason, Err: d.Err, Topic: d.Topic, Index: d.Index, ID: d.ID, Status: d.Status}
		if d.Topic != "" {
			l.Partition, l.Offset = &d.Partition, &d.Offset
		}
		if !d.Timestamp.IsZero() {
			// RFC 3339 as encoding/json writes a time, but for every year: encoding/json
			// refuses one past 9999 (a producer's microseconds read as milliseconds), and
			// would fail the Write, and every retry of the batch, for one record.
			ts := d.Timestamp.UTC().Format(time.RFC3339Nano)
			l.Timestamp = &ts
		}
		bytesField(d.Key, &l.Key, &l.KeyText, &l.KeyBase64)
		bytesField(d.Value, &l.Value, &l.ValueText, &l.ValueBase64)
		for _, h := range d.Headers {
			hl := headerLine{Key: h.Key}
			bytesField(h.Value, &hl.Value, &hl.ValueText, &hl.ValueBase64)
			l.Headers = append(l.Headers, hl)
		}
		b, err := json.Marshal(l)
		if err != nil {
			return fmt.Errorf("opensearch: dead letter: %w", err)
		}
		j.buf = append(j.buf, b...)
		j.buf = append(j.buf, '\n')
	}
	return nil
}
