// Tests of the document id schemes.

package docid_test

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/internal/docid"
)

func TestBound(t *testing.T) {
	short := strings.Repeat("a", docid.MaxBytes)
	require.Equal(t, short, docid.Bound(short), "an id that fits is kept")
	require.Equal(t, "", docid.Bound(""))

	long := "alert-device_silent-" + strings.Repeat("C", 600)
	b := docid.Bound(long)
	require.LessOrEqual(t, len(b), docid.MaxBytes)
	require.Equal(t, b, docid.Bound(long), "deterministic")
	require.True(t, strings.HasPrefix(b, long[:docid.PrefixBytes]), "readable prefix")
	require.Contains(t, b, "~sha256:")

	// Ids that share the kept prefix and differ at the end get different replacements.
	other := long[:len(long)-1] + "D"
	require.NotEqual(t, b, docid.Bound(other))

	// The prefix is cut at a character boundary: é is two bytes, so 400 bytes of "xé..."
	// would split one.
	multi := "x" + strings.Repeat("é", 400)
	mb := docid.Bound(multi)
	require.True(t, utf8.ValidString(mb))
	require.LessOrEqual(t, len(mb), docid.MaxBytes)
	require.Equal(t, docid.PrefixBytes-1, strings.Index(mb, "~sha256:"))
}

// TestBoundInvalidUTF8: ids that are not valid UTF-8 get stable replacements of valid UTF-8,
// distinct for ids that differ only in their invalid bytes, and within MaxBytes however many
// such bytes they hold. Bound once kept them, and encoding/json turned both into one id.
func TestBoundInvalidUTF8(t *testing.T) {
	a, b := docid.Bound("cab\xff"), docid.Bound("cab\xfe")
	require.NotEqual(t, a, b)
	require.Equal(t, a, docid.Bound("cab\xff"), "deterministic")
	for _, id := range []string{a, b} {
		require.True(t, utf8.ValidString(id), "%q", id)
		require.True(t, strings.HasPrefix(id, "cab\uFFFD~sha256:"), id)
	}
	require.NotEqual(t, a, docid.Bound("cab\uFFFD"), "the id already holding U+FFFD is kept")
	require.Equal(t, "cab\uFFFD", docid.Bound("cab\uFFFD"))

	// Long ids of invalid bytes: each becomes three, so the prefix is shortened.
	for _, id := range []string{strings.Repeat("\xff", 500), strings.Repeat("\xff", 5000), "x" + strings.Repeat("\xff", 300) + strings.Repeat("é", 300)} {
		r := docid.Bound(id)
		require.True(t, utf8.ValidString(r))
		require.LessOrEqual(t, len(r), docid.MaxBytes)
		require.NotEqual(t, r, docid.Bound(id[:len(id)-1]))
	}

	// A long id whose prefix holds a few invalid bytes keeps the replacement it had when its
	// prefix was sent as it was (encoding/json wrote each invalid byte as U+FFFD).
	long := "cab\xff-" + strings.Repeat("C", 600)
	r := docid.Bound(long)
	require.True(t, strings.HasPrefix(r, "cab\uFFFD-"+strings.Repeat("C", docid.PrefixBytes-5)+"~sha256:"), r)
}

func TestAppendWindowFixedLength(t *testing.T) {
	start := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	id := string(docid.AppendWindow(nil, "p", strings.Repeat("k", 10_000), start, start.Add(time.Minute)))
	require.Len(t, id, 32)
	require.NotEqual(t, id, string(docid.AppendWindow(nil, "p", "k", start, start.Add(time.Minute))))
}
