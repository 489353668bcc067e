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

func TestAppendWindowFixedLength(t *testing.T) {
	start := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	id := string(docid.AppendWindow(nil, "p", strings.Repeat("k", 10_000), start, start.Add(time.Minute)))
	require.Len(t, id, 32)
	require.NotEqual(t, id, string(docid.AppendWindow(nil, "p", "k", start, start.Add(time.Minute))))
}
