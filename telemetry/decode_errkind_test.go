package telemetry_test

import (
	"encoding/json"
	"errors"
	"testing"
	"unicode/utf8"

	"github.com/fleetstream/fleetstream/telemetry"
)

// TestDecodeMalformedNotInvalid: input that is not well-formed JSON (cut
// short, garbage after a value, invalid UTF-8 later on) is ErrMalformed, as
// the docs of ErrMalformed/ErrInvalid say ("ErrInvalid reports well-formed
// JSON that violates the event schema"), even when a field read before the
// syntax error breaks the schema. kafka.Source dead-letters ErrInvalid as
// "invalid" (the record decoded) and the rest as "decode".
func TestDecodeMalformedNotInvalid(t *testing.T) {
	for _, in := range []string{
		`{"ts":0`,                     // truncated after a mistyped value
		`{"cab_id":"C","lat":91`,      // truncated after an out-of-range value
		`{"cab_id":"C","cab_id":"D`,   // truncated after a duplicate key
		`{"lat":91,}`,                 // trailing comma
		`{"status":"x"} trailing`,     // trailing data
		"{\"lat\":91,\"x\":\"\xff\"}", // invalid UTF-8 after the bad field
	} {
		if json.Valid([]byte(in)) && utf8.Valid([]byte(in)) {
			t.Fatalf("test input %q is valid JSON", in)
		}
		_, err := telemetry.Decode([]byte(in))
		if !errors.Is(err, telemetry.ErrMalformed) {
			t.Errorf("Decode(%q) = %v; want an error wrapping ErrMalformed", in, err)
		}
	}
}
