package kafka

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestIAMTokenProviderReusesUntilExpiry(t *testing.T) {
	calls := 0
	expiry := time.Now().Add(15 * time.Minute)
	p := &iamTokenProvider{timeout: time.Second, gen: func(context.Context) (string, int64, error) {
		calls++
		return "token-" + string(rune('a'+calls)), expiry.UnixMilli(), nil
	}}
	a, err := p.Token()
	if err != nil || a.Token != "token-b" {
		t.Fatalf("Token() = %v, %v", a, err)
	}
	b, _ := p.Token()
	if b.Token != a.Token || calls != 1 {
		t.Fatalf("a fresh token was not reused: %d calls", calls)
	}
	expiry = time.Now().Add(30 * time.Second) // within the refresh margin
	p.expires = expiry
	c, _ := p.Token()
	if c.Token == a.Token || calls != 2 {
		t.Fatalf("a token about to expire was reused: %d calls", calls)
	}
	p.gen = func(context.Context) (string, int64, error) { return "", 0, errors.New("no credentials") }
	p.expires = time.Now()
	if _, err := p.Token(); err == nil {
		t.Fatal("want an error without credentials")
	}
}

func TestSASLIntoSarama(t *testing.T) {
	for _, m := range []Mechanism{SASLPlain, SASLSCRAMSHA256, SASLSCRAMSHA512, SASLAWSMSKIAM} {
		c := Config{Brokers: []string{"b:9096"}, TLS: TLS{Enable: true},
			SASL: SASL{Mechanism: m, User: "u", Password: "p", AWSRegion: "eu-west-1"}}
		if m == SASLAWSMSKIAM {
			c.SASL.User, c.SASL.Password = "", ""
		}
		if err := c.validate(roleProducer); err != nil {
			t.Fatalf("%s: %v", m, err)
		}
		sc, err := c.sarama(roleProducer)
		if err != nil {
			t.Fatalf("%s: %v", m, err)
		}
		if err := sc.Validate(); err != nil {
			t.Fatalf("%s: sarama rejects the config: %v", m, err)
		}
		if !sc.Net.SASL.Enable || !sc.Net.TLS.Enable || !sc.Producer.Idempotent || sc.Net.MaxOpenRequests != 1 {
			t.Fatalf("%s: SASL/TLS/idempotence not set", m)
		}
	}
	c := Config{Brokers: []string{"b:9092"}, Group: "g", Topics: []string{"t"}}
	sc, err := c.sarama(roleConsumer)
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.Validate(); err != nil {
		t.Fatalf("sarama rejects the consumer config: %v", err)
	}
	if sc.Consumer.Offsets.AutoCommit.Enable {
		t.Fatal("auto-commit must be off")
	}
	if got := sc.Consumer.Group.Rebalance.GroupStrategies[0].Name(); got != StrategyCooperativeSticky {
		t.Fatalf("default strategy %q", got)
	}
}
