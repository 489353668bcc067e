package opensearch_test

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/opensearch"
	"github.com/fleetstream/fleetstream/stream"
)

// TestCheckIndexName: each of OpenSearch's rules for index names (as OpenSearch 2.19
// answered a bulk request into each name) is refused with an error that quotes the name and
// says the rule; names OpenSearch takes pass, up to 255 bytes, non-ASCII lower case and a tab
// included.
func TestCheckIndexName(t *testing.T) {
	for _, ok := range []string{"cab-stats-2026.11.25", "a", "e2e_run.3", ".hidden", "x-", "caf\u00e9", "tab\there", strings.Repeat("x", 255)} {
		require.NoError(t, opensearch.CheckIndexName(ok), "%q", ok)
	}
	for _, tc := range []struct{ name, says string }{
		{"", "must not be empty"},
		{".", `must not be "." or ".."`},
		{"..", `must not be "." or ".."`},
		{"Adopter-Upper", "must be lower case"},
		{"caf\u00c9", "must be lower case"},
		{"bad\xffname", "not valid UTF-8"},
		{"a b", `must not hold ' '`},
		{`a\b`, `must not hold '\\'`},
		{"a/b", `must not hold '/'`},
		{"a*", `must not hold '*'`},
		{"a?", `must not hold '?'`},
		{`a"b`, `must not hold '"'`},
		{"a<b", `must not hold '<'`},
		{"a>b", `must not hold '>'`},
		{"a|b", `must not hold '|'`},
		{"a,b", `must not hold ','`},
		{"a#b", `must not hold '#'`},
		{"a:b", `must not hold ':'`},
		{"_a", "must not start with _, - or +"},
		{"-a", "must not start with _, - or +"},
		{"+a", "must not start with _, - or +"},
		{strings.Repeat("x", 256), "is 256 bytes long, more than 255"},
		{strings.Repeat("\u00e9", 128), "is 256 bytes long, more than 255"},
	} {
		err := opensearch.CheckIndexName(tc.name)
		require.Error(t, err, "%q", tc.name)
		require.ErrorContains(t, err, tc.says, "%q", tc.name)
		named := tc.name
		if len(named) > 64 {
			named = named[:64] + "..." // both long names cut at a character boundary
		}
		require.ErrorContains(t, err, "index name "+strconv.Quote(named), "the error names the name")
		require.ErrorContains(t, err, "OpenSearch's index names: lower case", "and gives the rules")
	}
}

// TestInvalidIndexNameIsPermanent, on the real node: an index name that OpenSearch refuses
// (invalid_index_name_exception) refuses every document for it, like a closed index
// (TestIndexRefusedIsPermanent). A sink with FixedIndex("Adopter-Upper") sent every document
// to the dead letters, the batches were acknowledged and the job exited 0; now Write fails
// permanently, with an error that names the index and the rule, and nothing is
// dead-lettered. In a batch that also writes to a name OpenSearch takes, the documents for
// the refused names (one made from a document's field, say) are dead-lettered, each with the
// refusal, and the others are written. Every name OpenSearch refuses here CheckIndexName
// refuses too, and every name it takes CheckIndexName passes.
func TestInvalidIndexNameIsPermanent(t *testing.T) {
	n := newNode(t)
	base := n.newPrefixOf(t, "indexname") // the names OpenSearch takes are base-*
	retry := opensearch.WithRetry(stream.RetryPolicy{Initial: time.Millisecond, Max: time.Millisecond, MaxAttempts: 3})

	t.Run("fixed", func(t *testing.T) {
		index := "Adopter-Upper-" + base
		require.ErrorContains(t, opensearch.CheckIndexName(index), "must be lower case")
		dl := &collector{}
		s, err := opensearch.NewSink(n.client, opensearch.Mapping[cabStats]{
			Index: opensearch.FixedIndex[cabStats](index), ID: statsID, Body: appendCabStats,
		}, opensearch.WithDeadLetter(dl), retry)
		require.NoError(t, err)
		err = s.Write(t.Context(), stats(0, 5))
		require.Error(t, err, "dead-lettered: %d", len(dl.letters()))
		require.True(t, stream.IsPermanent(err), "permanent: %v", err)
		var he *opensearch.HTTPError
		require.ErrorAs(t, err, &he)
		require.Equal(t, n.url+"/_bulk", he.URL)
		for _, want := range []string{`index "` + index + `"`, "5 document(s)", "invalid_index_name_exception",
			"must be lowercase", "its index names are lower case", "CheckIndexName"} {
			require.ErrorContains(t, err, want)
		}
		require.Empty(t, dl.letters(), "nothing dead-lettered")
		require.Zero(t, s.Stats().DeadLettered)
		require.Equal(t, int64(1), s.Stats().Requests, "not retried")
	})

	t.Run("made from the document", func(t *testing.T) {
		good := []string{base + "-ok", base + "-caf\u00e9", base + "-tab\there", base + "-" + strings.Repeat("x", 254-len(base))}
		bad := []string{"Upper-" + base, base + " space", base + "/slash", base + "#hash", base + ":colon", base + ",comma",
			base + "*", base + "?", "_" + base, "-" + base, "+" + base, ".", "..", base + "-" + strings.Repeat("x", 255-len(base))}
		require.Len(t, good[3], 255)
		require.Len(t, bad[len(bad)-1], 256)
		names := append(slices.Clone(good), bad...)
		vals := stats(0, len(names))
		indexOf := map[string]string{}
		for i, v := range vals {
			indexOf[v.CabID] = names[i]
		}
		dl := &collector{}
		s, err := opensearch.NewSink(n.client, opensearch.Mapping[cabStats]{
			Index: func(v cabStats) string { return indexOf[v.CabID] }, ID: statsID, Body: appendCabStats,
		}, opensearch.WithDeadLetter(dl), retry)
		require.NoError(t, err)
		require.NoError(t, s.Write(t.Context(), vals))

		var refused []string
		for _, l := range dl.letters() {
			refused = append(refused, l.Index)
			require.Equal(t, stream.ReasonRejected, l.Reason)
			require.Equal(t, 400, l.Status)
			require.Contains(t, l.Err, "invalid_index_name_exception")
			require.Contains(t, l.Err, "its index names are lower case", "the refusal and the rules in Err")
		}
		require.ElementsMatch(t, bad, refused, "the refused names, and only those, dead-lettered")
		for _, name := range bad {
			require.Error(t, opensearch.CheckIndexName(name), "OpenSearch refused %q", name)
		}
		for _, name := range good {
			require.NoError(t, opensearch.CheckIndexName(name), "OpenSearch took %q", name)
			require.Equal(t, 1, n.count(t, url.PathEscape(name)), "written to %q", name)
		}
	})
}
