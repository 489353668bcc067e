package opensearch_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/opensearch"
	"github.com/fleetstream/fleetstream/stream"
)

// tlsNode serves f over TLS with httptest's certificate (valid for 127.0.0.1, ::1 and
// example.com, signed by itself) or with cert, and returns the server's base URL and its
// certificate as PEM, the CA a client needs to trust it.
func tlsNode(t *testing.T, f *fakeNode, cert *tls.Certificate) (base string, ca []byte) {
	srv := httptest.NewUnstartedServer(f)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // "TLS handshake error" lines
	if cert != nil {
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{*cert}}
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
}

// selfSigned is a self-signed CA certificate for 127.0.0.1, valid from notBefore to
// notAfter, and its PEM.
func selfSigned(t *testing.T, notBefore, notAfter time.Time) (*tls.Certificate, []byte) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "test node"},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	require.NoError(t, err)
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// badCertificate is a TLS server whose certificate this client does not verify.
type badCertificate struct {
	name string
	// node returns the address to use (without credentials) and the client's CA, if any.
	node func(t *testing.T) (addr string, ca []byte)
	// says is what the error says failed verification; hint what to do about it.
	says, hint string
}

func badCertificates() []badCertificate {
	return []badCertificate{
		{"signed by an authority the client does not trust",
			func(t *testing.T) (string, []byte) {
				base, _ := tlsNode(t, newFake(), nil)
				return base, nil
			},
			"certificate signed by unknown authority", "set CACertFile or CACertPEM"},
		{"signed by another authority than the CA given",
			func(t *testing.T) (string, []byte) {
				base, _ := tlsNode(t, newFake(), nil)
				_, other := selfSigned(t, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
				return base, other
			},
			"certificate signed by unknown authority", "the CA certificate in CACertFile or CACertPEM did not sign it"},
		{"not valid for the host name",
			func(t *testing.T) (string, []byte) {
				base, ca := tlsNode(t, newFake(), nil)
				return strings.Replace(base, "127.0.0.1", "localhost", 1), ca
			},
			"not localhost", "a host name the certificate holds"},
		{"expired",
			func(t *testing.T) (string, []byte) {
				cert, _ := selfSigned(t, time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour))
				base, ca := tlsNode(t, newFake(), cert)
				return base, ca
			},
			"certificate has expired", "clock"},
	}
}

func badCertificateClient(t *testing.T, addr string, ca []byte) *opensearch.Client {
	c, err := opensearch.NewClient(t.Context(), opensearch.Config{Addresses: []string{withCredentials(addr)}, CACertPEM: ca})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestCertificateNotVerifiedIsPermanent: a server certificate that does not verify (an
// authority the client does not trust, another host name, expired) will not fix itself: Write
// fails at the first attempt with a permanent error wrapping ErrCertificate that names the
// URL, says what failed verification and hints at the fix; nothing is written, retried or
// dead-lettered; EnsureTemplates fails the same way. Before, each was retried as an outage,
// and the errors said neither what to do nor that it would not pass.
func TestCertificateNotVerifiedIsPermanent(t *testing.T) {
	for _, tc := range badCertificates() {
		t.Run(tc.name, func(t *testing.T) {
			addr, ca := tc.node(t)
			c := badCertificateClient(t, addr, ca)
			dl := &collector{}
			s, err := opensearch.NewSink(c, recMapping, opensearch.WithDeadLetter(dl),
				opensearch.WithRetry(stream.RetryPolicy{Initial: time.Millisecond, Max: time.Millisecond, MaxAttempts: 3}))
			require.NoError(t, err)
			err = s.Write(t.Context(), recs(5))
			require.Error(t, err)
			require.True(t, stream.IsPermanent(err), "permanent: %v", err)
			require.ErrorIs(t, err, opensearch.ErrCertificate)
			require.NotErrorIs(t, err, opensearch.ErrNotOpenSearch)
			for _, want := range []string{addr + "/_bulk", tc.says, tc.hint} {
				require.ErrorContains(t, err, want)
			}
			require.NotContains(t, err.Error(), addrSecret)
			st := s.Stats()
			require.Equal(t, int64(1), st.Requests, "not retried: %+v", st)
			require.Zero(t, st.Indexed+st.DeadLettered)
			require.Empty(t, dl.letters())
			require.Contains(t, st.LastError, addr+"/_bulk")

			err = c.EnsureTemplates(t.Context())
			require.ErrorIs(t, err, opensearch.ErrCertificate)
			require.ErrorContains(t, err, addr+"/_index_template/")
			require.ErrorContains(t, err, tc.says)
		})
	}
}

// TestCertificateNotVerifiedStopsPipeline: under the pipeline's default retry policy
// (retry for ever), Run stops with ErrCertificate and acknowledges nothing. Before, it ran
// into this test's deadline.
func TestCertificateNotVerifiedStopsPipeline(t *testing.T) {
	for _, tc := range badCertificates() {
		t.Run(tc.name, func(t *testing.T) {
			addr, ca := tc.node(t)
			sink, err := opensearch.NewSink(badCertificateClient(t, addr, ca), recMapping,
				opensearch.WithRetry(stream.RetryPolicy{Initial: time.Millisecond, Max: time.Millisecond}))
			require.NoError(t, err)
			p, err := stream.New(time.Millisecond, stream.WithRetry(stream.RetryPolicy{Initial: time.Millisecond, Max: time.Millisecond}))
			require.NoError(t, err)
			src := &commitSource{recs: recs(20)}
			stream.To(stream.From(p, stream.Source[rec](src)), sink)
			// A bound for the old behaviour, which retried for ever.
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			err = p.Run(ctx)
			require.ErrorIs(t, err, opensearch.ErrCertificate)
			require.Empty(t, src.committed())
		})
	}
}

// TestCertificateVerifiedWrites is the control of the tests above: the same servers, with
// the CA and the address the certificate holds, are written to. (The expired certificate
// has no valid variant.)
func TestCertificateVerifiedWrites(t *testing.T) {
	f := newFake()
	base, ca := tlsNode(t, f, nil)
	s, err := opensearch.NewSink(badCertificateClient(t, base, ca), recMapping)
	require.NoError(t, err)
	require.NoError(t, s.Write(t.Context(), recs(5)))
	require.Len(t, f.stored, 5)
}

// TestTLSHandshakeOutageIsRetried: a TLS server that accepts the connection and then closes
// it or never answers the handshake is an outage (a node starting or overloaded, a proxy
// without a backend), not a certificate error: Write fails retryably after its attempts.
func TestTLSHandshakeOutageIsRetried(t *testing.T) {
	for _, tc := range []struct {
		name   string
		handle func(net.Conn)
	}{
		{"closes during the handshake", func(c net.Conn) { _ = c.Close() }},
		{"reads the hello and closes", func(c net.Conn) {
			_, _ = c.Read(make([]byte, 512))
			_ = c.Close()
		}},
		{"never answers the handshake", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var addr string
			if tc.handle != nil {
				addr = listenTCP(t, tc.handle)
			} else {
				ln, err := net.Listen("tcp", "127.0.0.1:0") // accepted by the kernel, never answered
				require.NoError(t, err)
				t.Cleanup(func() { _ = ln.Close() })
				addr = ln.Addr().String()
			}
			c, err := opensearch.NewClient(t.Context(), opensearch.Config{Addresses: []string{"https://" + addr}, RequestTimeout: 100 * time.Millisecond})
			require.NoError(t, err)
			t.Cleanup(func() { _ = c.Close() })
			s, err := opensearch.NewSink(c, recMapping,
				opensearch.WithRetry(stream.RetryPolicy{Initial: time.Millisecond, Max: time.Millisecond, MaxAttempts: 3}))
			require.NoError(t, err)
			err = s.Write(t.Context(), recs(4))
			require.Error(t, err)
			require.False(t, stream.IsPermanent(err), "an outage is retried: %v", err)
			require.NotErrorIs(t, err, opensearch.ErrCertificate)
			require.Equal(t, int64(3), s.Stats().Requests)
		})
	}
}

// clientCA is a CA and a client certificate it signed, as PEM.
type clientCA struct {
	pool            *x509.CertPool
	certPEM, keyPEM []byte
	caCert          *x509.Certificate
	caKey           *ecdsa.PrivateKey
}

// newClientCA makes a CA and a client certificate "fleet" signed by it.
func newClientCA(t *testing.T) clientCA {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "client CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTpl, caTpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	caCert, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	ca := clientCA{pool: x509.NewCertPool(), caCert: caCert, caKey: caKey}
	ca.pool.AddCert(caCert)
	ca.certPEM, ca.keyPEM = ca.issue(t, "fleet")
	return ca
}

// issue returns a client certificate for name signed by the CA, and its key, as PEM.
func (ca clientCA) issue(t *testing.T, name string) (certPEM, keyPEM []byte) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tpl, ca.caCert, &key.PublicKey, ca.caKey)
	require.NoError(t, err)
	kder, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

// mtlsNode serves f over TLS and requires a client certificate signed by ca; it returns the
// base URL and the server's CA (PEM).
func mtlsNode(t *testing.T, f *fakeNode, ca clientCA, maxVersion uint16) (base string, serverCA []byte) {
	srv := httptest.NewUnstartedServer(f)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.pool, MaxVersion: maxVersion}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
}

// TestClientCertificate: with ClientCertPEM and ClientKeyPEM (or the files), the client
// presents its certificate to a node that requires one (OpenSearch's security plugin with
// clientauth_mode REQUIRE) and writes. Before, the package had no such setting (kafka.Config
// had one), so a cluster that authenticates by certificate could not be written to.
func TestClientCertificate(t *testing.T) {
	ca := newClientCA(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "client.pem"), filepath.Join(dir, "client.key")
	require.NoError(t, os.WriteFile(certFile, ca.certPEM, 0o600))
	require.NoError(t, os.WriteFile(keyFile, ca.keyPEM, 0o600))
	for name, cfg := range map[string]opensearch.Config{
		"PEM":   {ClientCertPEM: ca.certPEM, ClientKeyPEM: ca.keyPEM},
		"files": {ClientCertFile: certFile, ClientKeyFile: keyFile},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFake()
			base, serverCA := mtlsNode(t, f, ca, 0)
			cfg.Addresses, cfg.CACertPEM = []string{base}, serverCA
			c, err := opensearch.NewClient(t.Context(), cfg)
			require.NoError(t, err)
			t.Cleanup(func() { _ = c.Close() })
			require.Contains(t, cfg.String(), "client_cert=true")
			s, err := opensearch.NewSink(c, recMapping)
			require.NoError(t, err)
			require.NoError(t, s.Write(t.Context(), recs(5)))
			require.Len(t, f.stored, 5)
		})
	}
}

// TestClientCertificateRefused: a node that requires a client certificate and gets none,
// or one signed by an authority it does not trust, refuses the handshake with a TLS alert.
// That will not pass on the next attempt: Write fails at once with a permanent error wrapping
// ErrCertificate that names the URL and says to check the client certificate. Before, each
// was retried as an outage, for ever under the pipeline's default policy. In TLS 1.2 the
// alert ends the handshake, so the first attempt reads it. In TLS 1.3 it comes after the
// client's handshake is done and races the reset of the connection the server closes: an
// attempt that reads the reset first is retried (about half of them on loopback; CI saw three
// in a row when the test allowed one attempt), so there the sink may take a few attempts,
// and stops at the first that reads the alert.
func TestClientCertificateRefused(t *testing.T) {
	ca := newClientCA(t)
	other := newClientCA(t) // a certificate of another authority
	for _, tc := range []struct {
		name    string
		cfg     opensearch.Config
		version uint16 // the server's highest TLS version: in 1.3 the alert comes after the handshake
	}{
		{"none", opensearch.Config{}, 0},
		{"another authority", opensearch.Config{ClientCertPEM: other.certPEM, ClientKeyPEM: other.keyPEM}, 0},
		{"none, TLS 1.2", opensearch.Config{}, tls.VersionTLS12},
		{"another authority, TLS 1.2", opensearch.Config{ClientCertPEM: other.certPEM, ClientKeyPEM: other.keyPEM}, tls.VersionTLS12},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base, serverCA := mtlsNode(t, newFake(), ca, tc.version)
			cfg := tc.cfg
			cfg.Addresses, cfg.CACertPEM = []string{base}, serverCA
			c, err := opensearch.NewClient(t.Context(), cfg)
			require.NoError(t, err)
			t.Cleanup(func() { _ = c.Close() })
			// 1 attempt in TLS 1.2; in TLS 1.3 the chance that 40 attempts in a row read the
			// reset first is about 2^-40.
			const attempts = 40
			s, err := opensearch.NewSink(c, recMapping,
				opensearch.WithRetry(stream.RetryPolicy{Initial: time.Millisecond, Max: time.Millisecond, MaxAttempts: attempts}))
			require.NoError(t, err)
			err = s.Write(t.Context(), recs(3))
			require.Error(t, err)
			require.True(t, stream.IsPermanent(err), "permanent: %v", err)
			require.ErrorIs(t, err, opensearch.ErrCertificate)
			require.ErrorContains(t, err, base+"/_bulk")
			require.ErrorContains(t, err, "client certificate")
			if tc.version == tls.VersionTLS12 {
				require.Equal(t, int64(1), s.Stats().Requests, "not retried")
			} else {
				require.Less(t, s.Stats().Requests, int64(attempts), "stopped by the alert, not by the retry policy")
			}
		})
	}
}

// TestClientCertificateInvalid: a certificate without its key, a key without its
// certificate, a pair that does not match, both a file and a PEM, and an unreadable file are
// refused by NewClient, naming the setting.
func TestClientCertificateInvalid(t *testing.T) {
	ca := newClientCA(t)
	_, otherKey := ca.issue(t, "other")
	for name, tc := range map[string]struct {
		cfg     opensearch.Config
		setting string
	}{
		"certificate alone": {opensearch.Config{ClientCertPEM: ca.certPEM}, "ClientKeyFile"},
		"key alone":         {opensearch.Config{ClientKeyPEM: ca.keyPEM}, "ClientCertFile"},
		"not a pair":        {opensearch.Config{ClientCertPEM: ca.certPEM, ClientKeyPEM: otherKey}, "ClientCertFile"},
		"file and PEM":      {opensearch.Config{ClientCertPEM: ca.certPEM, ClientCertFile: "x.pem", ClientKeyPEM: ca.keyPEM}, "ClientCertFile"},
		"no such file":      {opensearch.Config{ClientCertFile: "/nonexistent/c.pem", ClientKeyPEM: ca.keyPEM}, "ClientCertFile"},
	} {
		t.Run(name, func(t *testing.T) {
			tc.cfg.Addresses = []string{"https://127.0.0.1:9200"}
			_, err := opensearch.NewClient(t.Context(), tc.cfg)
			require.ErrorIs(t, err, opensearch.ErrInvalidOption)
			require.ErrorContains(t, err, tc.setting)
		})
	}
}
