package cli

import (
	"bytes"
	"flag"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestCredentialsNeverShown is issue 11's defect 8: -h printed FLEETSTREAM_OPENSEARCH_URL
// with its user:password as the flag's default.
func TestCredentialsNeverShown(t *testing.T) {
	t.Setenv("FLEETSTREAM_OPENSEARCH_URL", "https://admin:s3cret-pw@search.example:9200")
	t.Setenv("FLEETSTREAM_OPENSEARCH_USER", "")
	t.Setenv("FLEETSTREAM_OPENSEARCH_PASSWORD", "")
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	var help bytes.Buffer
	fs.SetOutput(&help)
	o := OpenSearchFlags(fs, KafkaFlags(fs))
	fs.PrintDefaults()
	require.NotContains(t, help.String(), "s3cret-pw")
	require.Contains(t, help.String(), "https://search.example:9200")

	cfg, err := o.Config()
	require.NoError(t, err)
	require.Equal(t, []string{"https://search.example:9200"}, cfg.Addresses, "the addresses, which are logged, carry no credentials")
	require.Equal(t, "admin", cfg.Username)
	require.Equal(t, "s3cret-pw", cfg.Password, "the credentials still authenticate")

	// The same for a URL given on the command line, and a password flag wins.
	require.NoError(t, fs.Parse([]string{"-opensearch", "https://bob:other-pw@a:9200,https://b:9200", "-opensearch-user", "", "-opensearch-password", "flag-pw"}))
	cfg, err = o.Config()
	require.NoError(t, err)
	require.Equal(t, []string{"https://a:9200", "https://b:9200"}, cfg.Addresses)
	require.Equal(t, "bob", cfg.Username)
	require.Equal(t, "flag-pw", cfg.Password)
	for _, a := range cfg.Addresses {
		require.False(t, strings.Contains(a, "@"))
	}
}

func TestRedact(t *testing.T) {
	require.Equal(t, "https://u:xxxxx@h:1", Redact("https://u:pw@h:1"))
	require.Equal(t, "https://h:1", Redact("https://h:1"))
	require.Equal(t, "not a url %zz", Redact("not a url %zz"))
}
