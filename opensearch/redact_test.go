package opensearch_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/opensearch"
	"github.com/fleetstream/fleetstream/stream"
)

// jsonForms returns s as JSON writers put it in a string: Go's encoding/json (<, > and &
// as \u003c...), one that escapes only what JSON requires (Jackson, OpenSearch's), and one
// that also escapes "/" (PHP's); without the quotes.
func jsonForms(s string) []string {
	goForm, _ := json.Marshal(s)
	var plain bytes.Buffer
	enc := json.NewEncoder(&plain)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	p := strings.TrimSuffix(plain.String(), "\n")
	forms := []string{string(goForm), p, strings.ReplaceAll(p, "/", `\/`)}
	for i, f := range forms {
		forms[i] = f[1 : len(f)-1]
	}
	return forms
}

// TestCredentialsNotInJSONEscapedBodies: a body that echoes a credential JSON-escaped (a
// password holding a quote, a backslash, "&" or "/", a SigV4 session token holding "/")
// is quoted in errors, Stats.LastError and dead letters with the credential replaced, in
// whichever form it came, and so is a SigV4 request's session token and signature. Before,
// only the literal basic auth credentials were replaced: the escaped forms showed, a dead
// letter's Err (the decoded reason of a 400) showed the password itself, and nothing of
// SigV4 was replaced. The same holds when the transport (Config.Transport: a wrapper, a
// recorder) answers with a response that does not carry its request (http.Response.Request
// nil): the headers are read from the request the client signed. Before, nothing of SigV4
// was replaced then.
func TestCredentialsNotInJSONEscapedBodies(t *testing.T) {
	const user, pass = "fleet", `pa"ss\wo&rd</x>`
	const token = "IQoJb3JpZ2luX2VjE+/Zm9vYmFy/YmF6cXV4==" // base64 with "+", "/" and "="
	basic := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	for _, tc := range []struct {
		name   string
		sigv4  bool
		status int
		page   func(echo string) string
		// noRequest: the transport's responses carry no Request.
		noRequest bool
	}{
		{"401", false, 401, func(e string) string { return `{"error":"bad credentials: ` + e + `"}` }, false},
		{"400 isolating a document", false, 400, func(e string) string {
			return `{"error":{"type":"illegal_argument_exception","reason":"cannot accept ` + e + `"},"status":400}`
		}, false},
		{"unusable 200", false, 200, func(e string) string { return `{"echo":"` + e + `"}` }, false},
		{"sigv4 403", true, 403, func(e string) string {
			return `{"message":"The security token included in the request is invalid: ` + e + `"}`
		}, false},
		{"sigv4 400 isolating a document", true, 400, func(e string) string {
			return `{"error":{"type":"illegal_argument_exception","reason":"cannot accept ` + e + `"},"status":400}`
		}, false},
		{"sigv4 403, response without its request", true, 403, func(e string) string {
			return `{"message":"The security token included in the request is invalid: ` + e + `"}`
		}, true},
		{"sigv4 400 isolating a document, response without its request", true, 400, func(e string) string {
			return `{"error":{"type":"illegal_argument_exception","reason":"cannot accept ` + e + `"},"status":400}`
		}, true},
		{"sigv4 unusable 200, response without its request", true, 200, func(e string) string { return `{"echo":"` + e + `"}` }, true},
		{"basic 401, response without its request", false, 401, func(e string) string { return `{"error":"bad credentials: ` + e + `"}` }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var secrets []string // what each request sent that must not show
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				echo := []string{r.Header.Get("Authorization")}
				if tc.sigv4 {
					echo = append(echo, r.Header.Get("X-Amz-Security-Token"))
				} else {
					echo = append(echo, pass, user+":"+pass)
				}
				var forms []string
				for _, e := range echo {
					forms = append(forms, jsonForms(e)...)
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.page(strings.Join(forms, " ")))
			}))
			t.Cleanup(srv.Close)
			cfg := opensearch.Config{Addresses: []string{srv.URL}}
			if tc.noRequest {
				cfg.Transport = requestDropper{http.DefaultTransport.(*http.Transport).Clone()}
			}
			if tc.sigv4 {
				awsCfg := aws.Config{Region: "eu-west-1", Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "SECRETKEY", token)}
				cfg.AWS = &opensearch.AWSAuth{Config: &awsCfg}
				secrets = []string{token, "Signature="}
			} else {
				cfg.Username, cfg.Password = user, pass
				secrets = []string{pass, basic[:12], "wo&rd", "wo\\u0026rd", `wo\\u0026rd`, `pa\"ss`, `ss\\wo`}
			}
			quoted := quotedAfterWrite(t, cfg, tc.status)
			for _, q := range quoted {
				for _, sec := range secrets {
					require.NotContains(t, q, sec, "%s", q)
				}
			}
			require.Contains(t, strings.Join(quoted, "\n"), "***")
		})
	}
}

// quotedAfterWrite writes one document with a client of cfg to a server that answers status
// and returns what quotes its answer: Stats.LastError, Write's error (an error unless the
// status is 400) and the dead letter's Err (one, with a 400 that isolates the document).
func quotedAfterWrite(t *testing.T, cfg opensearch.Config, status int) []string {
	t.Helper()
	c, err := opensearch.NewClient(t.Context(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	dl := &collector{}
	s, err := opensearch.NewSink(c, recMapping, opensearch.WithDeadLetter(dl),
		opensearch.WithRetry(stream.RetryPolicy{Initial: time.Millisecond, Max: time.Millisecond, MaxAttempts: 2}))
	require.NoError(t, err)
	err = s.Write(t.Context(), recs(1))
	quoted := []string{s.Stats().LastError}
	if err != nil {
		quoted = append(quoted, err.Error())
	}
	for _, d := range dl.letters() {
		quoted = append(quoted, d.Err)
	}
	if status == 400 {
		require.NoError(t, err)
		require.Len(t, dl.letters(), 1)
	} else {
		require.Error(t, err)
	}
	return quoted
}

// requestDropper is a transport whose responses do not carry their request, as a wrapper's
// or a recorder's may not.
type requestDropper struct{ next *http.Transport }

func (d requestDropper) RoundTrip(r *http.Request) (*http.Response, error) {
	res, err := d.next.RoundTrip(r)
	if res != nil {
		res.Request = nil
	}
	return res, err
}
