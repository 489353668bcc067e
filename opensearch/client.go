// The connection: Config, AWSAuth, Client and NewClient, and credential redaction. One
// request attempt and its errors are in request.go.

package opensearch

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	osgo "github.com/opensearch-project/opensearch-go/v4"
	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"
	"github.com/opensearch-project/opensearch-go/v4/signer"
	"github.com/opensearch-project/opensearch-go/v4/signer/awsv2"
)

var (
	// ErrInvalidOption is wrapped by every construction error of NewClient, NewSink and
	// EnsureTemplates options; the message names the setting.
	ErrInvalidOption = errors.New("opensearch: invalid option")
	// ErrClosed is returned by Write after Close, marked stream.Permanent: a pipeline that
	// shares the sink with one that closed it (a pipeline closes its sinks when Run
	// returns) stops instead of retrying for ever.
	ErrClosed = errors.New("opensearch: sink closed")
	// ErrBodyTooLarge is wrapped by the *ResponseError of a response whose body is over its
	// cap: a bulk response's grows with its request (see the package doc, # Retries), others
	// are small.
	ErrBodyTooLarge = errors.New("opensearch: response body over its cap")
	// ErrNotOpenSearch is wrapped by the error of a request whose answer shows that its
	// address leads to something other than OpenSearch's HTTP API: another web service or
	// a proxy's page, a path prefix where OpenSearch has no handler, plain HTTP sent to a
	// TLS port or TLS to a plain one, a port that does not speak HTTP. The sink fails Write
	// with it, marked stream.Permanent; the message names the URL and what answered.
	ErrNotOpenSearch = errors.New("opensearch: not an OpenSearch node's answer (check the address: scheme, host, port and path)")
	// ErrCertificate is wrapped by the error of a request whose TLS handshake failed because
	// the server's certificate does not verify (signed by an authority the client does not
	// trust, not valid for the address's host, expired) or the server refused the client's
	// certificate or the handshake with a TLS alert. The sink fails Write with it, marked
	// stream.Permanent; the message names the URL, what failed and what to check.
	ErrCertificate = errors.New("opensearch: the server's TLS certificate does not verify")
)

func invalid(setting, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalidOption, setting, fmt.Sprintf(format, args...))
}

// Config says how to reach an OpenSearch cluster. The zero value is not valid: at least one
// address is required.
type Config struct {
	// Addresses are the base URLs of the nodes, e.g. "https://search-x.eu-west-1.es.amazonaws.com".
	// Credentials in a URL ("https://user:pass@host:9200") are taken out of it and used as
	// basic auth; they never appear in logs or errors.
	Addresses []string
	// Username and Password enable HTTP basic auth. Use them over TLS only.
	Username string
	Password string
	// CACertFile and CACertPEM add certificate authorities (PEM) that the server certificate
	// may chain to, instead of the system roots.
	CACertFile string
	CACertPEM  []byte
	// ClientCertFile and ClientKeyFile (or ClientCertPEM and ClientKeyPEM) are a client
	// certificate and its key (PEM) for mutual TLS, as OpenSearch's security plugin accepts
	// for authentication (plugins.security.ssl.http.clientauth_mode). A server that refuses
	// it fails Write with an error wrapping ErrCertificate.
	ClientCertFile, ClientKeyFile string
	ClientCertPEM, ClientKeyPEM   []byte
	// InsecureSkipVerify disables server certificate verification. Discouraged: it exposes
	// the credentials to anyone on the path. Tests and local clusters only; NewClient logs a
	// warning when it is set.
	InsecureSkipVerify bool
	// AWS signs every request with AWS Signature V4 for Amazon OpenSearch Service or
	// OpenSearch Serverless. It excludes basic auth.
	AWS *AWSAuth
	// RequestTimeout bounds one HTTP request attempt. Default one minute.
	RequestTimeout time.Duration
	// SlowRequest is how long a request attempt waits for its answer before it is logged
	// at Warn as still waiting (its URL, what it is, how long it has waited and how far it
	// got), then again every 30 s while it waits, and at Info when it ends; a sink's bulk
	// requests show it in Stats.SlowSince. It changes neither the timeout nor the retries.
	// Default DefaultSlowRequest (10 s); negative turns it off.
	SlowRequest time.Duration
	// Transport replaces the HTTP transport (a proxy, a test server). The TLS settings above
	// apply only when it is nil or an *http.Transport. Nil: a transport of the Client's own,
	// http.DefaultTransport's settings keeping 32 idle connections a node (Close closes
	// them).
	Transport http.RoundTripper
	// Logger receives the client's and its sinks' logs; the default discards, as
	// everywhere in fleetstream (stream.WithLogger, the kafka package's WithLogger). Give
	// the application's logger (slog.Default() for the process's default) to see the
	// warnings of an outage (the URL, how long it has lasted) while the sink retries;
	// without one, only Sink.Stats (FailingSince, LastError) and the errors say so.
	Logger *slog.Logger
}

// AWSAuth configures SigV4 request signing.
type AWSAuth struct {
	// Region is the cluster's AWS region, e.g. "eu-west-1". Required unless Config sets it.
	Region string
	// Service is "es" for Amazon OpenSearch Service (the default) or "aoss" for OpenSearch
	// Serverless.
	Service string
	// Config supplies the credentials. Nil loads the default chain (environment, shared
	// config files, web identity, ECS/EC2 roles) with config.LoadDefaultConfig.
	Config *aws.Config
}

// AWS service names for AWSAuth.Service.
const (
	ServiceManaged    = "es"
	ServiceServerless = "aoss"
)

// Client is a connection to an OpenSearch cluster, shared by sinks and template installation.
// It is safe for concurrent use.
type Client struct {
	api     *opensearchapi.Client
	logger  *slog.Logger
	timeout time.Duration
	slow    time.Duration // Config.SlowRequest; 0 when off
	hosts   []string      // redacted, for logs
	urls    []string      // the addresses without credentials, for errors and logs
	// customCA is set when CACertFile or CACertPEM gave the authorities to trust;
	// clientCert when the client presents a certificate (mutual TLS).
	customCA, clientCert bool
	// secrets are the basic auth credentials as a response body may echo them (a proxy's
	// page showing the request's Authorization header), replaced where errors quote one,
	// with the headers of the request answered (Client.redact).
	secrets [][]byte
	// aheadSlots bounds the creations ahead (WithIndexAhead) of the Client's sinks.
	aheadSlots chan struct{}
	// failures are the last failure of each node that failed a request since it last served one.
	failures nodeMemory
	heard    heardNodes
}

// NewClient validates cfg and builds a client. It does not contact the cluster. An invalid
// cfg returns an error wrapping ErrInvalidOption that names the setting.
func NewClient(ctx context.Context, cfg Config) (*Client, error) {
	oc := osgo.Config{
		Username:           cfg.Username,
		Password:           cfg.Password,
		InsecureSkipVerify: cfg.InsecureSkipVerify,
		Transport:          cfg.Transport,
		// Retries live in the sink, where they know about items, budgets and ctx.
		DisableRetry: true,
	}
	if len(cfg.Addresses) == 0 {
		return nil, invalid("Addresses", "at least one address is required")
	}
	hosts := make([]string, 0, len(cfg.Addresses))
	for i, a := range cfg.Addresses {
		u, user, pass, err := parseAddress(a)
		if err != nil {
			return nil, invalid(fmt.Sprintf("Addresses[%d]", i), "%v", err)
		}
		if user != "" || pass != "" {
			if (oc.Username != "" && oc.Username != user) || (oc.Password != "" && oc.Password != pass) {
				return nil, invalid(fmt.Sprintf("Addresses[%d]", i), "credentials in the URL differ from Username/Password or another address")
			}
			oc.Username, oc.Password = user, pass
		}
		oc.Addresses = append(oc.Addresses, u.String())
		hosts = append(hosts, u.Host)
	}
	if oc.Password != "" && oc.Username == "" {
		return nil, invalid("Username", "a password needs a username")
	}
	if oc.Username != "" && oc.Password == "" {
		return nil, invalid("Password", "basic auth needs a password")
	}
	if cfg.CACertFile != "" && len(cfg.CACertPEM) > 0 {
		return nil, invalid("CACertFile", "set CACertFile or CACertPEM, not both")
	}
	ca := cfg.CACertPEM
	if cfg.CACertFile != "" {
		b, err := os.ReadFile(cfg.CACertFile)
		if err != nil {
			return nil, invalid("CACertFile", "%v", err)
		}
		ca = b
	}
	if len(ca) > 0 {
		if cfg.InsecureSkipVerify {
			return nil, invalid("InsecureSkipVerify", "conflicts with a CA certificate")
		}
		if !x509.NewCertPool().AppendCertsFromPEM(ca) {
			return nil, invalid("CACert", "no PEM certificate found")
		}
		oc.CACert = ca
	}
	cert, err := clientCertificate(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.Transport != nil && (len(ca) > 0 || cfg.InsecureSkipVerify || cert != nil) {
		if _, ok := cfg.Transport.(*http.Transport); !ok {
			return nil, invalid("Transport", "TLS settings need an *http.Transport")
		}
	}
	switch cfg.Transport.(type) {
	case nil:
		oc.Transport = ownTransport()
	case *http.Transport:
		// Its responses carry their request.
	default:
		oc.Transport = requestKeeper{cfg.Transport}
	}
	if cert != nil {
		tr, _ := oc.Transport.(*http.Transport)
		tr = tr.Clone()
		if tr.TLSClientConfig == nil {
			tr.TLSClientConfig = &tls.Config{}
		}
		tr.TLSClientConfig.Certificates = []tls.Certificate{*cert}
		oc.Transport = tr
	}
	if cfg.RequestTimeout < 0 {
		return nil, invalid("RequestTimeout", "negative")
	}
	timeout := cfg.RequestTimeout
	if timeout == 0 {
		timeout = time.Minute
	}
	slow := cfg.SlowRequest
	switch {
	case slow == 0:
		slow = DefaultSlowRequest
	case slow < 0:
		slow = 0
	}
	if cfg.AWS != nil {
		if oc.Username != "" {
			return nil, invalid("AWS", "SigV4 excludes basic auth")
		}
		s, err := awsSigner(ctx, cfg.AWS)
		if err != nil {
			return nil, err
		}
		oc.Signer = s
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.InsecureSkipVerify {
		logger.Warn("opensearch: TLS certificate verification is OFF (InsecureSkipVerify): anyone on the path can read the credentials and the data; use a CA certificate instead",
			"addresses", strings.Join(hosts, ","))
	}
	if oc.Username != "" {
		for _, a := range oc.Addresses {
			if strings.HasPrefix(a, "http://") {
				logger.Warn("opensearch: basic auth over plain HTTP sends the password in clear text", "address", a)
				break
			}
		}
	}
	api, err := opensearchapi.NewClient(opensearchapi.Config{Client: oc})
	if err != nil {
		// The library's message may quote an address; keep it out.
		return nil, fmt.Errorf("opensearch: new client for %s: %s", strings.Join(hosts, ","), redact(err.Error(), oc.Password))
	}
	c := &Client{api: api, logger: logger, timeout: timeout, slow: slow, hosts: hosts, urls: oc.Addresses, customCA: len(ca) > 0,
		clientCert: cert != nil, aheadSlots: make(chan struct{}, aheadConcurrency), heard: heardNodes{n: len(hosts)}}
	if oc.Username != "" {
		userPass := oc.Username + ":" + oc.Password
		c.secrets = [][]byte{[]byte(base64.StdEncoding.EncodeToString([]byte(userPass))), []byte(userPass), []byte(oc.Password)}
	}
	return c, nil
}

// maxIdlePerHost is how many idle connections a Client keeps to each node: sinks send up
// to their concurrency's requests at once (4 by default, WithConcurrency), and several sinks
// share a Client.
const maxIdlePerHost = 32

// ownTransport is a Client's HTTP transport when Config gives none: a copy of
// http.DefaultTransport of its own. With the default one itself (opensearch-go's choice), a
// sink's concurrent requests beyond its 2 idle connections a host were closed after each
// answer and dialled again for the next batch, and Close closed the idle connections of
// every other client in the process that uses http.DefaultTransport.
func ownTransport() *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = maxIdlePerHost
	return tr
}

// clientCertificate loads Config's client certificate and key, nil when it has none.
func clientCertificate(cfg Config) (*tls.Certificate, error) {
	certPEM, keyPEM := cfg.ClientCertPEM, cfg.ClientKeyPEM
	for _, f := range []struct {
		name, file string
		pem        *[]byte
	}{{"ClientCertFile", cfg.ClientCertFile, &certPEM}, {"ClientKeyFile", cfg.ClientKeyFile, &keyPEM}} {
		if f.file == "" {
			continue
		}
		if len(*f.pem) > 0 {
			return nil, invalid(f.name, "set the file or the PEM, not both")
		}
		b, err := os.ReadFile(f.file)
		if err != nil {
			return nil, invalid(f.name, "%v", err)
		}
		*f.pem = b
	}
	switch {
	case len(certPEM) == 0 && len(keyPEM) == 0:
		return nil, nil
	case len(certPEM) == 0:
		return nil, invalid("ClientCertFile", "a client key needs its certificate (ClientCertFile or ClientCertPEM)")
	case len(keyPEM) == 0:
		return nil, invalid("ClientKeyFile", "a client certificate needs its key (ClientKeyFile or ClientKeyPEM)")
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, invalid("ClientCertFile", "not a matching PEM certificate and key: %v", err)
	}
	return &cert, nil
}

// String describes the client by its nodes' hosts, never its credentials.
func (c *Client) String() string { return "opensearch.Client(" + strings.Join(c.hosts, ",") + ")" }

// String describes the config with URL credentials and the password replaced by "***", so
// that printing or logging a Config (%v, %+v) never shows them.
func (c Config) String() string {
	addrs := make([]string, len(c.Addresses))
	for i, a := range c.Addresses {
		addrs[i] = RedactURL(a)
	}
	pass := ""
	if c.Password != "" {
		pass = "***"
	}
	aws := ""
	if c.AWS != nil {
		aws = fmt.Sprintf(" aws=%s/%s", c.AWS.Region, c.AWS.Service)
	}
	return fmt.Sprintf("opensearch.Config{addresses=%s username=%q password=%q ca=%t client_cert=%t insecure_skip_verify=%t%s timeout=%v}",
		strings.Join(addrs, ","), c.Username, pass, c.CACertFile != "" || len(c.CACertPEM) > 0,
		c.ClientCertFile != "" || len(c.ClientCertPEM) > 0, c.InsecureSkipVerify, aws, c.RequestTimeout)
}

// GoString is String, for %#v.
func (c Config) GoString() string { return c.String() }

// LogValue makes slog log a Config as its String, without credentials.
func (c Config) LogValue() slog.Value { return slog.StringValue(c.String()) }

// RedactURL returns s with the userinfo of a URL (user:password@) replaced by "***@", for
// logs, errors, flag defaults and status pages. It also handles comma-separated lists of
// URLs and strings that do not parse as URLs; anything else is returned as it is.
func RedactURL(s string) string {
	if strings.Contains(s, ",") {
		parts := strings.Split(s, ",")
		for i, p := range parts {
			parts[i] = RedactURL(p)
		}
		return strings.Join(parts, ",")
	}
	return stripUserinfo(s)
}

func awsSigner(ctx context.Context, a *AWSAuth) (signer.Signer, error) {
	service := a.Service
	switch service {
	case "":
		service = ServiceManaged
	case ServiceManaged, ServiceServerless:
	default:
		return nil, invalid("AWS.Service", "%q: want %q or %q", a.Service, ServiceManaged, ServiceServerless)
	}
	var cfg aws.Config
	if a.Config != nil {
		cfg = a.Config.Copy()
	} else {
		// Renew temporary credentials 2.5 to 5 minutes (a random point) before they expire, not at
		// expiry: a request signed with credentials about to expire may arrive after it.
		opts := []func(*awsconfig.LoadOptions) error{awsconfig.WithCredentialsCacheOptions(func(o *aws.CredentialsCacheOptions) {
			o.ExpiryWindow, o.ExpiryWindowJitterFrac = 5*time.Minute, 0.5
		})}
		if a.Region != "" {
			opts = append(opts, awsconfig.WithRegion(a.Region))
		}
		c, err := awsconfig.LoadDefaultConfig(ctx, opts...)
		if err != nil {
			return nil, invalid("AWS.Config", "load default AWS config: %v", err)
		}
		cfg = c
	}
	if a.Region != "" {
		cfg.Region = a.Region
	}
	if cfg.Region == "" {
		return nil, invalid("AWS.Region", "required")
	}
	if cfg.Credentials == nil {
		return nil, invalid("AWS.Config", "no credentials provider")
	}
	s, err := awsv2.NewSignerWithService(cfg, service)
	if err != nil {
		return nil, invalid("AWS", "%v", err)
	}
	return s, nil
}

// parseAddress parses a node URL and takes its credentials out. Errors never quote the
// input, which may hold a password.
func parseAddress(a string) (u *url.URL, user, pass string, err error) {
	a = strings.TrimSpace(a)
	if a == "" {
		return nil, "", "", errors.New("empty")
	}
	u, perr := url.Parse(strings.TrimRight(a, "/"))
	if perr != nil {
		return nil, "", "", fmt.Errorf("not a URL: %s", stripUserinfo(a))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, "", "", fmt.Errorf("%s: scheme must be http or https", stripUserinfo(a))
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, "", "", fmt.Errorf("%s: no host", stripUserinfo(a))
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, "", "", fmt.Errorf("%s: no query or fragment allowed", stripUserinfo(a))
	}
	if u.User != nil {
		user = u.User.Username()
		pass, _ = u.User.Password()
		u.User = nil
	}
	return u, user, pass, nil
}

// stripUserinfo replaces anything between "//" and the last "@" by "***".
// It errs on the side of hiding: a password with a raw "/" or "@" is still hidden (a path
// holding "@" is hidden too).
func stripUserinfo(s string) string {
	i := strings.Index(s, "//")
	if i < 0 {
		if j := strings.LastIndex(s, "@"); j >= 0 {
			return "***@" + s[j+1:]
		}
		return s
	}
	rest := s[i+2:]
	// The last "@" anywhere: a password may hold a raw "?" or "#" (not percent-encoded),
	// which would otherwise end the search inside it and leave it shown. A query or path
	// holding "@" is hidden too.
	if j := strings.LastIndex(rest, "@"); j >= 0 {
		return s[:i+2] + "***@" + rest[j+1:]
	}
	return s
}

func redact(s, secret string) string {
	if secret == "" {
		return s
	}
	return strings.ReplaceAll(s, secret, "***")
}

// API returns the underlying opensearch-go client, for requests this package does not wrap.
func (c *Client) API() *opensearchapi.Client { return c.api }

// Close releases the client's idle connections and background work.
func (c *Client) Close() error { return c.api.Client.Close() }
