package opensearch_test

// Tests of helper-97's review of the bulk sink (after 4e2edd2): each failed on the code before.

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/opensearch"
	"github.com/fleetstream/fleetstream/stream"
)

// TestSinkDroppedByIngestPipeline: an index whose default pipeline has a drop processor
// answers the dropped document with status 200 and result "noop" (OpenSearch's
// BulkRequestModifier.markItemAsDropped: a success with an UpdateResponse of Result.NOOP,
// under the item's own op type). That is OpenSearch's final answer for the document: the
// sink must not take the response for an unusable one and send it again until MaxAttempts,
// after which the pipeline writes the batch again and gets the same answer, for ever.
func TestSinkDroppedByIngestPipeline(t *testing.T) {
	f := &scriptNode{stored: map[string]string{}}
	f.item = func(_ int, _, _, id string) string {
		if id == "debug" {
			return `{"status":200,"result":"noop"}`
		}
		return ""
	}
	dl := &collector{}
	s := scriptSink(t, f, itemMapping, opensearch.WithDeadLetter(dl))
	err := s.Write(t.Context(), []itemDoc{{"a", "x", 1}, {"a", "debug", 2}, {"a", "y", 3}})
	require.NoError(t, err, "requests sent: %d", f.reqs)
	require.Equal(t, []string{"a/x", "a/y"}, f.keys())
	require.Equal(t, 1, f.reqs, "a dropped document is no reason to send the request again")
	require.Empty(t, dl.letters())
}

// TestIndexRefusalAfter429: every document of the batch goes to the output's one
// index ("out"). The first response turns them all away for now (429 items); the retry of
// the same documents finds the index closed. No document of the batch went to an index
// that takes documents, so Write must fail permanently, dead-lettering nothing, as it does
// when the first response already says the index is closed (the design's "Before, every
// document went to the dead letters, the batches were acknowledged, and the job looked
// healthy"). Since 4e2edd2 the chunk's taken flag, set by the 429 response of the same
// documents, makes the Write dead-letter them all and return nil.
func TestIndexRefusalAfter429(t *testing.T) {
	f := &scriptNode{stored: map[string]string{}}
	f.item = func(req int, _, _, _ string) string {
		if req == 1 {
			return `{"status":429,"error":{"type":"es_rejected_execution_exception","reason":"rejected execution: queue capacity reached"}}`
		}
		return `{"status":400,"error":{"type":"index_closed_exception","reason":"closed","index":"out"}}`
	}
	dl := &collector{}
	s := scriptSink(t, f, itemMapping, opensearch.WithDeadLetter(dl))
	var batch []itemDoc
	for i := range 3 {
		batch = append(batch, itemDoc{"out", fmt.Sprintf("d%d", i), i})
	}
	err := s.Write(t.Context(), batch)
	require.Error(t, err, "dead-lettered: %d", len(dl.letters()))
	require.True(t, stream.IsPermanent(err), "permanent: %v", err)
	require.ErrorContains(t, err, "index_closed_exception")
	require.Empty(t, dl.letters())
	require.Zero(t, s.Stats().DeadLettered)
}

// TestShardLimitIsNotTheDocuments: at midnight OpenSearch creates the new day's index on
// the first bulk request into it; when the cluster has reached cluster.max_shards_per_node it
// cannot, and answers every item for that index with 400 validation_exception "this action
// would add [2] total shards, but this cluster currently has [1000]/[1000] maximum shards
// open". That is no fault of the documents (any document for the index is refused alike, and
// an operator who deletes old indexes or raises the limit fixes it), like the index refusals
// the sink knows (index_not_found_exception with auto-create off). The sink dead-letters every
// document of the new day and acknowledges the batches: the job looks healthy while the day's
// results go to the dead letters.
func TestShardLimitIsNotTheDocuments(t *testing.T) {
	const next = "cab-stats-2026.11.26"
	f := &scriptNode{stored: map[string]string{}}
	f.item = func(_ int, _, index, _ string) string {
		if index == next {
			return `{"status":400,"error":{"type":"validation_exception","reason":"Validation Failed: 1: this action would add [2] total shards, but this cluster currently has [1000]/[1000] maximum shards open;"}}`
		}
		return ""
	}
	dl := &collector{}
	s := scriptSink(t, f, itemMapping, opensearch.WithDeadLetter(dl))
	var batch []itemDoc
	for i := range 4 {
		batch = append(batch, itemDoc{next, fmt.Sprintf("w%d", i), i})
	}
	err := s.Write(t.Context(), batch)
	require.Error(t, err, "every document dead-lettered (%d) and the batch acknowledged", len(dl.letters()))
	require.ErrorContains(t, err, "maximum shards open")
	require.Empty(t, dl.letters())
}

// TestCredentialsWithHashOrQuestionMark: a password holding a raw '#' or '?' (not
// percent-encoded, as people paste them) must not appear in NewClient's error, RedactURL or
// a printed Config: stripUserinfo looks for the '@' only before the first '?' or '#', which
// in such a URL is inside the password, so nothing is hidden.
func TestCredentialsWithHashOrQuestionMark(t *testing.T) {
	for _, secret := range []string{"pa#ss", "pa?ss", "123#x"} {
		addr := "https://fleet:" + secret + "@search.example.com:9200"
		for what, s := range map[string]string{
			"RedactURL":     opensearch.RedactURL(addr),
			"Config.String": opensearch.Config{Addresses: []string{addr}}.String(),
		} {
			require.False(t, strings.Contains(s, secret), "%s leaks %q: %s", what, secret, s)
		}
		_, err := opensearch.NewClient(t.Context(), opensearch.Config{Addresses: []string{addr}})
		if err != nil {
			require.False(t, strings.Contains(err.Error(), secret), "NewClient's error leaks %q: %v", secret, err)
			require.False(t, strings.Contains(err.Error(), secret[2:]), "NewClient's error leaks part of %q: %v", secret, err)
		}
	}
}

// TestExplicitIndexNotAllowed: a cluster with rest.action.multi.allow_explicit_index
// false (an advanced option of Amazon OpenSearch Service, set with index-scoped access
// policies) refuses every bulk request that names an index in its action lines, as the sink's
// always do, with 400 illegal_argument_exception "explicit index in bulk is not allowed". That
// refuses the request, not a document: no document can ever be written so. The sink takes the
// typed 400 for a document's validation error, splits every request down to single documents
// (one request per document), dead-letters every one and acknowledges the batch.
func TestExplicitIndexNotAllowed(t *testing.T) {
	f := &scriptNode{stored: map[string]string{}}
	f.whole = func(int, int) (int, string) {
		return 400, `{"error":{"root_cause":[{"type":"illegal_argument_exception","reason":"explicit index in bulk is not allowed"}],"type":"illegal_argument_exception","reason":"explicit index in bulk is not allowed"},"status":400}`
	}
	dl := &collector{}
	s := scriptSink(t, f, itemMapping, opensearch.WithDeadLetter(dl))
	var batch []itemDoc
	for i := range 8 {
		batch = append(batch, itemDoc{"out", fmt.Sprintf("d%d", i), i})
	}
	err := s.Write(t.Context(), batch)
	require.Error(t, err, "dead-lettered %d of 8 documents in %d requests", len(dl.letters()), f.reqs)
	require.True(t, stream.IsPermanent(err), "permanent: %v", err)
	require.ErrorContains(t, err, "explicit index in bulk is not allowed")
	require.Empty(t, dl.letters())
}
