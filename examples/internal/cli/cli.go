// Package cli holds the command-line flags that the example programs share: how to reach
// Kafka (or Amazon MSK) and OpenSearch (or Amazon OpenSearch Service). Defaults come from the
// testenv variables (FLEETSTREAM_KAFKA_BROKERS, FLEETSTREAM_OPENSEARCH_URL), so the examples
// run against `make services-up` without flags. Secrets may come from the environment
// (FLEETSTREAM_KAFKA_PASSWORD, FLEETSTREAM_OPENSEARCH_PASSWORD) to keep them off the
// command line.
package cli

import (
	"cmp"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/fleetstream/fleetstream/kafka"
	"github.com/fleetstream/fleetstream/opensearch"
)

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// Kafka holds the Kafka connection flags.
type Kafka struct {
	brokers, sasl, user, password, ca, region string
	tls                                       bool
}

// KafkaFlags registers the Kafka connection flags on fs.
func KafkaFlags(fs *flag.FlagSet) *Kafka {
	k := &Kafka{}
	fs.StringVar(&k.brokers, "brokers", env("FLEETSTREAM_KAFKA_BROKERS", "127.0.0.1:19092"), "Kafka bootstrap brokers, comma-separated")
	fs.BoolVar(&k.tls, "kafka-tls", false, "connect to Kafka over TLS (Amazon MSK: ports 9094, 9096, 9098)")
	fs.StringVar(&k.ca, "kafka-ca", "", "PEM file of the CA that signed the brokers' certificates (default: system roots)")
	fs.StringVar(&k.sasl, "kafka-sasl", "", "SASL mechanism: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or AWS_MSK_IAM")
	fs.StringVar(&k.user, "kafka-user", env("FLEETSTREAM_KAFKA_USER", ""), "SASL user")
	fs.StringVar(&k.password, "kafka-password", "", "SASL password (or FLEETSTREAM_KAFKA_PASSWORD)")
	fs.StringVar(&k.region, "aws-region", env("AWS_REGION", ""), "AWS region, for MSK IAM and OpenSearch SigV4")
	return k
}

// Config returns the Kafka config the flags describe.
func (k *Kafka) Config() kafka.Config {
	cfg := kafka.Config{Brokers: strings.Split(k.brokers, ",")}
	if k.tls || k.ca != "" {
		cfg.TLS = kafka.TLS{Enable: true, CAFile: k.ca}
	}
	if k.sasl != "" {
		pw := k.password
		if pw == "" {
			pw = os.Getenv("FLEETSTREAM_KAFKA_PASSWORD")
		}
		cfg.SASL = kafka.SASL{Mechanism: kafka.Mechanism(strings.ToUpper(k.sasl)), User: k.user, Password: pw, AWSRegion: k.region}
	}
	return cfg
}

// OpenSearch holds the OpenSearch connection flags.
type OpenSearch struct {
	url, user, password, ca, sigv4 string
	cert, key                      string // -opensearch-client-cert, -opensearch-client-key
	region                         *string
	// envPassword is the password of a FLEETSTREAM_OPENSEARCH_URL with credentials: kept out
	// of the flag's default, which -h prints.
	envPassword string
}

// OpenSearchFlags registers the OpenSearch connection flags on fs; k supplies -aws-region.
// Credentials in a URL (https://user:password@host, from FLEETSTREAM_OPENSEARCH_URL or
// -opensearch) are taken out of it into basic auth, so that no URL the programs print or log
// (-h, the startup line, errors) carries them.
func OpenSearchFlags(fs *flag.FlagSet, k *Kafka) *OpenSearch {
	o := &OpenSearch{region: &k.region}
	envURL, envUser, envPassword := splitUserinfo(env("FLEETSTREAM_OPENSEARCH_URL", "http://127.0.0.1:19200"))
	o.envPassword = envPassword
	fs.StringVar(&o.url, "opensearch", envURL, "OpenSearch URL(s), comma-separated")
	fs.StringVar(&o.user, "opensearch-user", env("FLEETSTREAM_OPENSEARCH_USER", envUser), "OpenSearch basic-auth user")
	fs.StringVar(&o.password, "opensearch-password", "", "OpenSearch password (or FLEETSTREAM_OPENSEARCH_PASSWORD)")
	fs.StringVar(&o.ca, "opensearch-ca", "", "PEM file of the CA that signed OpenSearch's certificate")
	fs.StringVar(&o.cert, "opensearch-client-cert", "", "PEM file of a client certificate for OpenSearch (mutual TLS), with -opensearch-client-key")
	fs.StringVar(&o.key, "opensearch-client-key", "", "PEM file of the key of -opensearch-client-cert")
	fs.StringVar(&o.sigv4, "opensearch-sigv4", "", `sign requests with AWS SigV4 for this service: "es" (OpenSearch Service) or "aoss" (Serverless)`)
	return o
}

// Config returns the OpenSearch config the flags describe.
func (o *OpenSearch) Config() (opensearch.Config, error) {
	cfg := opensearch.Config{Username: o.user, CACertFile: o.ca, ClientCertFile: o.cert, ClientKeyFile: o.key}
	var urlPassword string
	for _, a := range strings.Split(o.url, ",") {
		clean, user, pw := splitUserinfo(a)
		cfg.Addresses = append(cfg.Addresses, clean)
		if user != "" && cfg.Username == "" {
			cfg.Username = user
		}
		if pw != "" {
			urlPassword = pw
		}
	}
	if cfg.Username != "" {
		cfg.Password = cmp.Or(o.password, urlPassword, os.Getenv("FLEETSTREAM_OPENSEARCH_PASSWORD"), o.envPassword)
	}
	switch o.sigv4 {
	case "":
	case "es", "aoss":
		cfg.AWS = &opensearch.AWSAuth{Region: *o.region, Service: o.sigv4}
	default:
		return cfg, fmt.Errorf("-opensearch-sigv4 %q: want es or aoss", o.sigv4)
	}
	return cfg, nil
}

// splitUserinfo returns raw without the user and password it may carry, and them. A string
// that is not a URL with userinfo is returned as it is.
func splitUserinfo(raw string) (clean, user, password string) {
	raw = strings.TrimSpace(raw)
	u, err := url.Parse(raw)
	if err == nil {
		if u.User == nil {
			return raw, "", ""
		}
		user = u.User.Username()
		password, _ = u.User.Password()
		u.User = nil
		return u.String(), user, password
	}
	// Not a URL as url.Parse reads it, most often a password with a '/', '?' or '#' that is
	// not percent-encoded: the userinfo is taken out by hand, up to the authority's last
	// '@', so that the password shows neither in -h nor in a log.
	scheme, rest, ok := strings.Cut(raw, "://")
	at := strings.LastIndex(rest, "@")
	if !ok || at < 0 {
		return opensearch.RedactURL(raw), "", ""
	}
	user, password, _ = strings.Cut(rest[:at], ":")
	return scheme + "://" + rest[at+1:], user, password
}

// Redact returns raw with any password in its URL userinfo replaced by "xxxxx", for logs; a
// string that is not a URL loses its userinfo altogether.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return opensearch.RedactURL(raw)
	}
	if u.User == nil {
		return raw
	}
	return u.Redacted()
}
