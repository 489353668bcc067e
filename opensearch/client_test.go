package opensearch_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/internal/syncbuf"
	"github.com/fleetstream/fleetstream/opensearch"
	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/testenv"
)

func TestNewClientInvalidConfig(t *testing.T) {
	badPEM := filepath.Join(t.TempDir(), "not-a-ca.pem")
	require.NoError(t, os.WriteFile(badPEM, []byte("nothing here"), 0o600))
	awsCfg := aws.Config{Region: "eu-west-1", Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", "")}
	for _, tc := range []struct {
		name    string
		cfg     opensearch.Config
		setting string
	}{
		{"NoAddress", opensearch.Config{}, "Addresses"},
		{"BadScheme", opensearch.Config{Addresses: []string{"ftp://h:9200"}}, "Addresses[0]"},
		{"NoHost", opensearch.Config{Addresses: []string{"http://"}}, "Addresses[0]"},
		{"Unparseable", opensearch.Config{Addresses: []string{"http://u:pw@[::1"}}, "Addresses[0]"},
		{"PasswordOnly", opensearch.Config{Addresses: []string{"http://h"}, Password: "x"}, "Username"},
		{"UserOnly", opensearch.Config{Addresses: []string{"http://h"}, Username: "x"}, "Password"},
		{"ConflictingCreds", opensearch.Config{Addresses: []string{"http://a:b@h"}, Username: "c", Password: "d"}, "Addresses[0]"},
		{"MissingCAFile", opensearch.Config{Addresses: []string{"https://h"}, CACertFile: "/nonexistent/ca.pem"}, "CACertFile"},
		{"BadCA", opensearch.Config{Addresses: []string{"https://h"}, CACertFile: badPEM}, "CACert"},
		{"CAAndInsecure", opensearch.Config{Addresses: []string{"https://h"}, CACertPEM: testCA, InsecureSkipVerify: true}, "InsecureSkipVerify"},
		{"NegativeTimeout", opensearch.Config{Addresses: []string{"http://h"}, RequestTimeout: -time.Second}, "RequestTimeout"},
		{"AWSAndBasic", opensearch.Config{Addresses: []string{"https://h"}, Username: "u", Password: "p", AWS: &opensearch.AWSAuth{Config: &awsCfg}}, "AWS"},
		{"AWSBadService", opensearch.Config{Addresses: []string{"https://h"}, AWS: &opensearch.AWSAuth{Config: &awsCfg, Service: "s3"}}, "AWS.Service"},
		{"AWSNoRegion", opensearch.Config{Addresses: []string{"https://h"}, AWS: &opensearch.AWSAuth{Config: &aws.Config{Credentials: awsCfg.Credentials}}}, "AWS.Region"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := opensearch.NewClient(t.Context(), tc.cfg)
			require.ErrorIs(t, err, opensearch.ErrInvalidOption)
			require.Contains(t, err.Error(), tc.setting+":")
			require.NotContains(t, err.Error(), "pw")
		})
	}
}

func TestNewClientValidConfigs(t *testing.T) {
	awsCfg := aws.Config{Region: "eu-west-1", Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", "")}
	for name, cfg := range map[string]opensearch.Config{
		"Plain":      {Addresses: []string{"http://127.0.0.1:9200/"}},
		"Basic":      {Addresses: []string{"https://h:9200", "https://h2:9200"}, Username: "u", Password: "p", CACertPEM: testCA},
		"URLCreds":   {Addresses: []string{"https://u:p@h:9200"}, InsecureSkipVerify: true},
		"Managed":    {Addresses: []string{"https://search-x.eu-west-1.es.amazonaws.com"}, AWS: &opensearch.AWSAuth{Config: &awsCfg}},
		"Serverless": {Addresses: []string{"https://x.eu-west-1.aoss.amazonaws.com"}, AWS: &opensearch.AWSAuth{Config: &awsCfg, Service: opensearch.ServiceServerless, Region: "us-east-1"}},
	} {
		t.Run(name, func(t *testing.T) {
			c, err := opensearch.NewClient(t.Context(), cfg)
			require.NoError(t, err)
			require.NotNil(t, c.API())
			require.NoError(t, c.Close())
		})
	}
}

// Credentials in an address never show in errors: nothing listens on port 1.
func TestCredentialsNotInErrors(t *testing.T) {
	const secret = "s3cr3t-pa55"
	c, err := opensearch.NewClient(t.Context(), opensearch.Config{Addresses: []string{"http://admin:" + secret + "@127.0.0.1:1"}})
	require.NoError(t, err)
	defer c.Close()
	s, err := opensearch.NewSink(c, recMapping, opensearch.WithRetry(stream.RetryPolicy{Initial: time.Millisecond, Max: time.Millisecond, MaxAttempts: 2}))
	require.NoError(t, err)
	err = s.Write(t.Context(), recs(3))
	require.Error(t, err)
	require.NotContains(t, err.Error(), secret)
	require.NotContains(t, err.Error(), "admin")

	err = c.EnsureTemplates(t.Context())
	require.Error(t, err)
	require.NotContains(t, err.Error(), secret)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	require.ErrorIs(t, c.EnsureTemplates(ctx), context.Canceled)
}

// SigV4: requests reach the server signed for the configured service, without basic auth.
func TestSigV4Signs(t *testing.T) {
	f := newFake()
	var auth, date string
	srv := httptestServer(t, func(h map[string][]string) {
		auth = first(h["Authorization"])
		date = first(h["X-Amz-Date"])
	}, f)
	awsCfg := aws.Config{Region: "eu-west-1", Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "SECRETKEY", "")}
	c, err := opensearch.NewClient(t.Context(), opensearch.Config{Addresses: []string{srv}, AWS: &opensearch.AWSAuth{Config: &awsCfg, Service: opensearch.ServiceServerless}})
	require.NoError(t, err)
	defer c.Close()
	s, err := opensearch.NewSink(c, recMapping)
	require.NoError(t, err)
	require.NoError(t, s.Write(t.Context(), recs(2)))
	require.Contains(t, auth, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
	require.Contains(t, auth, "/eu-west-1/aoss/aws4_request")
	require.NotEmpty(t, date)
	require.NotContains(t, auth, "SECRETKEY")
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// testCA returns a fresh self-signed CA certificate in PEM (only parsed, never used for a
// connection).
var testCA = func() []byte {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "fleet-test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}()

// httptestServer serves f and shows each request's headers to see first.
func httptestServer(t *testing.T, see func(map[string][]string), f http.Handler) string {
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/_bulk" {
			mu.Lock()
			see(r.Header)
			mu.Unlock()
		}
		f.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TLS with a CA certificate and basic auth from the URL, against a TLS test server.
func TestTLSAndBasicAuth(t *testing.T) {
	f := newFake()
	var user, pass string
	var ok bool
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/_bulk" {
			user, pass, ok = r.BasicAuth()
		}
		f.ServeHTTP(w, r)
	}))
	defer srv.Close()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	addr := strings.Replace(srv.URL, "https://", "https://fleet:pa55@", 1)
	once := opensearch.WithRetry(stream.RetryPolicy{Initial: time.Millisecond, Max: time.Millisecond, MaxAttempts: 1})

	for name, tc := range map[string]struct {
		cfg  opensearch.Config
		fail bool
	}{
		"CA":       {cfg: opensearch.Config{Addresses: []string{addr}, CACertPEM: ca}},
		"Insecure": {cfg: opensearch.Config{Addresses: []string{addr}, InsecureSkipVerify: true}},
		"NoCA":     {cfg: opensearch.Config{Addresses: []string{addr}}, fail: true},
	} {
		t.Run(name, func(t *testing.T) {
			c, err := opensearch.NewClient(t.Context(), tc.cfg)
			require.NoError(t, err)
			defer c.Close()
			s, err := opensearch.NewSink(c, recMapping, once)
			require.NoError(t, err)
			err = s.Write(t.Context(), recs(3))
			if tc.fail {
				require.ErrorContains(t, err, "certificate")
				require.NotContains(t, err.Error(), "pa55")
				return
			}
			require.NoError(t, err)
			require.True(t, ok)
			require.Equal(t, "fleet", user)
			require.Equal(t, "pa55", pass)
		})
	}
}

// Defect 8: credentials never show in logs, errors or a printed Config, and turning TLS
// verification off is logged as a warning.
func TestCredentialsRedacted(t *testing.T) {
	const secret = "s3cr3t/pa55@word"
	t.Run("Config", func(t *testing.T) {
		cfg := opensearch.Config{
			Addresses: []string{"https://fleet:" + secret + "@search.example.com:9200", "https://h2:9200"},
			Username:  "fleet",
			Password:  secret,
		}
		for _, s := range []string{cfg.String(), fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), fmt.Sprintf("%v", &cfg)} {
			require.NotContains(t, s, "s3cr3t")
			require.NotContains(t, s, "pa55")
			require.Contains(t, s, "search.example.com:9200")
		}
		logs := &syncbuf.Buffer{}
		textLogger(logs).Info("config", "opensearch", cfg)
		require.NotContains(t, logs.String(), "s3cr3t")
		require.Contains(t, logs.String(), "***@search.example.com")
	})
	t.Run("RedactURL", func(t *testing.T) {
		for in, want := range map[string]string{
			"https://u:p@h:9200":                    "https://***@h:9200",
			"https://u:" + secret + "@h:9200/x?y=1": "https://***@h:9200/x?y=1",
			"https://h:9200":                        "https://h:9200",
			"http://a:b@h1,http://c:d@h2":           "http://***@h1,http://***@h2",
			"u:p@h:9200":                            "***@h:9200",
			"":                                      "",
		} {
			require.Equal(t, want, opensearch.RedactURL(in), in)
		}
	})
	t.Run("InsecureSkipVerifyWarns", func(t *testing.T) {
		logs := &syncbuf.Buffer{}
		c, err := opensearch.NewClient(t.Context(), opensearch.Config{
			Addresses: []string{"https://fleet:s3cr3t@h:9200"}, InsecureSkipVerify: true, Logger: textLogger(logs),
		})
		require.NoError(t, err)
		defer c.Close()
		require.Contains(t, logs.String(), "level=WARN")
		require.Contains(t, logs.String(), "InsecureSkipVerify")
		require.NotContains(t, logs.String(), "s3cr3t")
		require.NotContains(t, c.String(), "s3cr3t")

		quiet := &syncbuf.Buffer{}
		c2, err := opensearch.NewClient(t.Context(), opensearch.Config{Addresses: []string{"https://h:9200"}, CACertPEM: testCA, Logger: textLogger(quiet)})
		require.NoError(t, err)
		defer c2.Close()
		require.NotContains(t, quiet.String(), "InsecureSkipVerify")
	})
}

// Defect 8 against the real node: a client whose URL holds credentials writes, logs and
// fails (a node that is not there) without ever showing them.
func TestCredentialsRedactedRealNode(t *testing.T) {
	const secret = "n0de-s3cr3t"
	u := testenv.OpenSearchURL(t)
	logs := &syncbuf.Buffer{}
	withCreds := strings.Replace(u, "://", "://fleet:"+secret+"@", 1)
	c, err := opensearch.NewClient(t.Context(), opensearch.Config{Addresses: []string{withCreds}, Logger: textLogger(logs)})
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.EnsureTemplates(t.Context(), opensearch.WithReplicas(0)))
	n := newNode(t)
	prefix := n.newPrefix(t)
	s, err := opensearch.NewSink(c, statsMapping(prefix))
	require.NoError(t, err)
	require.NoError(t, s.Write(t.Context(), stats(0, 10)))
	require.Equal(t, 10, n.count(t, prefix+"-*"))
	require.Contains(t, logs.String(), "plain HTTP") // basic auth over http is warned about

	// The same credentials on a port where nothing listens: errors and logs stay clean.
	dead, err := opensearch.NewClient(t.Context(), opensearch.Config{Addresses: []string{"http://fleet:" + secret + "@127.0.0.1:1"}, Logger: textLogger(logs)})
	require.NoError(t, err)
	defer dead.Close()
	ds, err := opensearch.NewSink(dead, statsMapping(prefix), opensearch.WithRetry(stream.RetryPolicy{Initial: time.Millisecond, Max: time.Millisecond, MaxAttempts: 2}))
	require.NoError(t, err)
	err = ds.Write(t.Context(), stats(0, 3))
	require.Error(t, err)
	require.NotContains(t, err.Error(), secret)
	require.NotContains(t, logs.String(), secret)
	require.Contains(t, logs.String(), "retrying")
}

// keepBodies is a transport that answers every request at once, without reading its body, and
// keeps the bodies: as Go's transport may go on reading one after RoundTrip returned (an
// early response, a cancel).
type keepBodies struct {
	mu     sync.Mutex
	bodies []io.ReadCloser
}

func (k *keepBodies) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil { // PutTemplates' GETs have none
		k.mu.Lock()
		k.bodies = append(k.bodies, req.Body)
		k.mu.Unlock()
	}
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(`{"acknowledged":true}`)), Request: req}, nil
}

// TestRequestBodyNotReadAfterRequest: once a request is over, its body no longer reads the
// caller's buffer, which the sink reuses (its chunk pool, its retries): a transport still
// reading it gets an error instead of bytes being overwritten (a data race before).
func TestRequestBodyNotReadAfterRequest(t *testing.T) {
	tr := &keepBodies{}
	c, err := opensearch.NewClient(t.Context(), opensearch.Config{Addresses: []string{"http://127.0.0.1:9"}, Transport: tr})
	require.NoError(t, err)
	require.NoError(t, c.EnsureTemplates(t.Context()))
	require.NotEmpty(t, tr.bodies)
	for i, b := range tr.bodies {
		n, err := b.Read(make([]byte, 16))
		require.Zero(t, n, "body %d read after its request", i)
		require.Error(t, err, "body %d", i)
		require.NotErrorIs(t, err, io.EOF, "body %d: an EOF would hide that it was never sent", i)
	}
}

// TestSigV4ExpiredTokenRetried: AWS refuses a request whose session token expired on its way
// (signed just before temporary credentials rotated) with 403 "The security token included
// in the request is expired": the sink retries it, and the next attempt, signed with the
// renewed credentials, is written. Before, the 403 was permanent and stopped the pipeline at
// a credentials rotation. A token AWS calls invalid stays permanent.
func TestSigV4ExpiredTokenRetried(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		written    bool
	}{
		{"expired token", `{"message":"The security token included in the request is expired"}`, true},
		{"expired signature", `{"message":"Signature expired: 20261204T120000Z is now earlier than 20261204T120500Z (20261204T121000Z - 5 min.)"}`, true},
		{"invalid token", `{"message":"The security token included in the request is invalid."}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			var tokens []string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				tok := r.Header.Get("X-Amz-Security-Token")
				tokens = append(tokens, tok) // one request at a time: the sink's requests of one Write are sequential here
				if tok == "token-1" {
					_, _ = io.Copy(io.Discard, r.Body)
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(403)
					_, _ = io.WriteString(w, tc.body)
					return
				}
				f.ServeHTTP(w, r)
			}))
			t.Cleanup(srv.Close)
			var n atomic.Int64
			rotating := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
				return aws.Credentials{AccessKeyID: "AKID", SecretAccessKey: "SECRET", SessionToken: fmt.Sprint("token-", n.Add(1))}, nil
			})
			awsCfg := aws.Config{Region: "eu-west-1", Credentials: rotating}
			c, err := opensearch.NewClient(t.Context(), opensearch.Config{Addresses: []string{srv.URL}, AWS: &opensearch.AWSAuth{Config: &awsCfg}})
			require.NoError(t, err)
			t.Cleanup(func() { _ = c.Close() })
			s, err := opensearch.NewSink(c, recMapping,
				opensearch.WithRetry(stream.RetryPolicy{Initial: time.Millisecond, Max: time.Millisecond, MaxAttempts: 3}))
			require.NoError(t, err)
			err = s.Write(t.Context(), recs(3))
			if !tc.written {
				require.Error(t, err)
				require.True(t, stream.IsPermanent(err), "permanent: %v", err)
				require.Equal(t, []string{"token-1"}, tokens, "not retried")
				return
			}
			require.NoError(t, err)
			require.Len(t, f.stored, 3)
			require.Equal(t, []string{"token-1", "token-2"}, tokens, "retried once, signed anew")
		})
	}
}

// TestClientKeepsItsConnections: a Client keeps a connection for each of a sink's
// concurrent requests (4 by default) between batches, and its Close leaves other clients'
// connections alone. It used http.DefaultTransport itself, as opensearch-go does without a
// Transport: 2 idle connections a host, so every batch dialled 2 of its 4 again, and Close
// closed the idle connections of everything else in the process that uses that transport.
func TestClientKeepsItsConnections(t *testing.T) {
	var dials atomic.Int64
	arrived := make(chan struct{}, 4)
	var release atomic.Pointer[chan struct{}]
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/wave" {
			arrived <- struct{}{}
			<-*release.Load()
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{}`))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			dials.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	// get sends a request and reads its answer to the end: the connection is then back among
	// the idle ones.
	get := func(send func(*http.Request) (*http.Response, error), path string) error {
		req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		if err != nil {
			return err
		}
		res, err := send(req)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, res.Body)
		return errors.Join(err, res.Body.Close())
	}

	// Another client of the process, on http.DefaultTransport, with an idle connection.
	require.NoError(t, get(http.DefaultClient.Do, "/other"))
	require.Equal(t, int64(1), dials.Load())

	c, err := opensearch.NewClient(context.Background(), opensearch.Config{Addresses: []string{srv.URL}})
	require.NoError(t, err)
	// Two waves of 4 requests on the server at once, as a sink's concurrent bulk requests
	// of two batches.
	for range 2 {
		rel := make(chan struct{})
		release.Store(&rel)
		errs := make(chan error, 4)
		for range 4 {
			go func() { errs <- get(c.API().Client.Stream, "/wave") }()
		}
		for range 4 {
			<-arrived
		}
		close(rel)
		for range 4 {
			require.NoError(t, <-errs)
		}
	}
	require.Equal(t, int64(1+4), dials.Load(), "the second batch's requests dialled again")
	require.NoError(t, c.Close())

	require.NoError(t, get(http.DefaultClient.Do, "/other"))
	require.Equal(t, int64(1+4), dials.Load(), "the Client's Close closed another client's idle connection")
}
