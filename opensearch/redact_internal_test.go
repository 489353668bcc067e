package opensearch

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRedactSecretForms: a secret is replaced written as it is or with any of its
// characters JSON-escaped, in either hex case and as a surrogate pair, however many times;
// text that only looks like it is left alone.
func TestRedactSecretForms(t *testing.T) {
	const secret = "p&\"ß/😀"
	for body, want := range map[string]string{
		`a p&"ß/😀 b`:                             `a *** b`,
		`a p\u0026\"\u00DF\/\ud83d\ude00 b`:      `a *** b`,
		`p\u0026\u0022\u00df/\uD83D\uDE00p&"ß/😀`: `******`,
		`\u0070&"ß/😀`:                            `***`,
		`p&"ß/😁 p\u0026\"\u00DF\/\ud83d`:         `p&"ß/😁 p\u0026\"\u00DF\/\ud83d`,
		`p&\u0022ß\u002`:                         `p&\u0022ß\u002`,
	} {
		require.Equal(t, want, string(redactSecret([]byte(body), []byte(secret))), body)
	}
}
