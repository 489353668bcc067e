//go:build unix

package opensearch_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/opensearch"
	"github.com/fleetstream/fleetstream/stream"
)

// TestJSONLinesFileOnFIFO: a dead-letter file that is a FIFO (a named pipe another process
// reads: a log shipper, or /dev/stdout in a container, whose output is a pipe) takes dead
// letters. JSONLinesFile synced after every write, and a pipe cannot be synced (fsync fails
// with EINVAL): every Write failed after its lines had gone out, and the pipeline wrote them
// again and again.
func TestJSONLinesFileOnFIFO(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dead.fifo")
	require.NoError(t, syscall.Mkfifo(path, 0o600))
	f, err := opensearch.OpenJSONLinesFile(path) // read-write: opening does not wait for a reader
	require.NoError(t, err)
	t.Cleanup(func() { _ = f.Close() })
	r, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close() })

	require.NoError(t, f.Write(t.Context(), []stream.DeadLetter{{Reason: stream.ReasonRejected, Err: "e", Offset: -1, Index: "i", ID: "1", Value: []byte(`{"n":1}`)}}))
	b := make([]byte, 4096)
	n, err := r.Read(b)
	require.NoError(t, err)
	require.Equal(t, []string{"1"}, letterIDs(b[:n]))
}
