// What every client of the package (Source, Producer, Exchange, Table, admin) says about
// its connection: the TLS warning, the error for a cluster it cannot reach (naming the brokers
// that took the connection and never answered), and errors with the credentials taken out.

package kafka

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"

	"github.com/IBM/sarama"
)

// warnInsecure logs a warning when sc turns TLS certificate verification off.
func warnInsecure(log *slog.Logger, sc *sarama.Config) {
	if sc.Net.TLS.Enable && sc.Net.TLS.Config != nil && sc.Net.TLS.Config.InsecureSkipVerify {
		log.Warn("kafka: TLS certificate verification is OFF (TLS.InsecureSkipVerify): the brokers are not authenticated; use it only in tests")
	}
}

// connectError describes a failure to reach the cluster. It names the brokers and the SASL
// mechanism and user, never the password.
func connectError(c *Config, err error) error {
	what := fmt.Sprintf("kafka: connect to %v", c.Brokers)
	if c.SASL.Mechanism != SASLNone {
		what += fmt.Sprintf(" (SASL %s", c.SASL.Mechanism)
		if c.SASL.User != "" {
			what += fmt.Sprintf(" as %q", c.SASL.User)
		}
		what += ")"
	}
	if errors.Is(err, sarama.ErrSASLAuthenticationFailed) {
		return fmt.Errorf("%s: authentication failed, check the user and password: %w", what, redact(c, err))
	}
	if silent := unanswered(err); silent != "" {
		return fmt.Errorf("%s: %s: %w", what, silent, redact(c, err))
	}
	return fmt.Errorf("%s: %w", what, redact(c, err))
}

// unanswered describes the brokers that err says timed out: those that accepted the
// connection and sent nothing back within the read timeout, and those that could not be
// connected to within the dial timeout. "" when none did.
func unanswered(err error) string {
	var silent, unreached []string
	var walk func(error)
	walk = func(err error) {
		var oe *net.OpError
		if oe, _ = err.(*net.OpError); oe != nil && oe.Timeout() && oe.Addr != nil {
			addr := oe.Addr.String()
			switch {
			case oe.Op == "dial" && !slices.Contains(unreached, addr):
				unreached = append(unreached, addr)
			case oe.Op != "dial" && !slices.Contains(silent, addr):
				silent = append(silent, addr)
			}
			return
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			if e := u.Unwrap(); e != nil {
				walk(e)
			}
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		}
	}
	walk(err)
	var parts []string
	for _, a := range silent {
		parts = append(parts, fmt.Sprintf("broker %s accepted the connection but did not answer within the read timeout "+
			"(is it a Kafka listener, for these TLS and SASL settings?)", a))
	}
	for _, a := range unreached {
		parts = append(parts, fmt.Sprintf("broker %s could not be connected to within the dial timeout (Config.DialTimeout)", a))
	}
	return strings.Join(parts, "; ")
}

// redact guards against a broker or library echoing a secret back in an error.
func redact(c *Config, err error) error {
	if c.SASL.Password == "" || err == nil {
		return err
	}
	if msg := err.Error(); strings.Contains(msg, c.SASL.Password) {
		return &redactedError{msg: strings.ReplaceAll(msg, c.SASL.Password, redacted), err: err}
	}
	return err
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }

// Is matches what the original error matches, without handing out its text via Unwrap.
func (e *redactedError) Is(target error) bool { return errors.Is(e.err, target) }
