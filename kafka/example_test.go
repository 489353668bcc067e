package kafka_test

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/fleetstream/fleetstream/kafka"
	"github.com/fleetstream/fleetstream/stream"
)

// Consume an Amazon MSK topic (SCRAM listener) into a pipeline and write alerts back to Kafka.
func ExampleNewSource() {
	cfg := kafka.Config{
		Brokers: []string{"b-1.fleet.abc123.c2.kafka.eu-west-1.amazonaws.com:9096"},
		Group:   "cab-alerts",
		Topics:  []string{"cab-telemetry"},
		TLS:     kafka.TLS{Enable: true},
		SASL:    kafka.SASL{Mechanism: kafka.SASLSCRAMSHA512, User: "fleet", Password: os.Getenv("MSK_PASSWORD")},
	}
	type reading struct {
		CabID string    `json:"cab_id"`
		TS    time.Time `json:"ts"`
		Speed float64   `json:"speed_kmh"`
	}
	// Event time from the payload; undecodable records go to "cab-telemetry.dlq".
	codec := kafka.CodecFunc[reading](func(m *kafka.Message) (reading, time.Time, error) {
		r, _, err := kafka.JSON[reading]().Decode(m)
		return r, r.TS, err
	})
	src, err := kafka.NewSource(cfg, codec)
	if err != nil {
		fmt.Println(err)
		return
	}
	alerts, err := kafka.NewProducer(kafka.Config{Brokers: cfg.Brokers, TLS: cfg.TLS, SASL: cfg.SASL}, "cab-alerts",
		kafka.JSONValue(func(r reading) []byte { return []byte(r.CabID) }))
	if err != nil {
		fmt.Println(err)
		return
	}
	p, _ := stream.New(time.Second)
	speeding := stream.From(p, src).Filter(func(r reading) bool { return r.Speed > 120 })
	stream.To(speeding, alerts)
	// p.Run(ctx) consumes until ctx ends, committing what the alerts sink acknowledged.
}

// Invalid settings fail at construction and name the setting.
func ExampleErrInvalidOption() {
	_, err := kafka.NewSource(kafka.Config{Brokers: []string{"localhost:9092"}, Topics: []string{"t"}}, kafka.JSON[map[string]any]())
	fmt.Println(err)
	// Output: kafka: invalid option: Group: empty: a Source needs a consumer group
}

// A program checks the topic names of its configuration before it connects.
func ExampleCheckTopic() {
	for _, name := range []string{"cab-telemetry", "cab telemetry", "..", "cabs/v2"} {
		fmt.Println(kafka.CheckTopic(name))
	}
	// Output:
	// <nil>
	// kafka: topic name "cab telemetry": character 4, ' ', is not allowed (only a-z, A-Z, 0-9, '.', '_' and '-')
	// kafka: topic name "..": Kafka takes no topic named "." or ".."
	// kafka: topic name "cabs/v2": character 5, '/', is not allowed (only a-z, A-Z, 0-9, '.', '_' and '-')
}

// A group instance id given on the command line, checked before the program connects: with
// the name its Exchange adds ("id.zones"), whose member joins with that id.
func ExampleCheckInstanceID() {
	for _, id := range []string{"fleet-pod-0", "fleet/pod-0", strings.Repeat("p", 245)} {
		err := kafka.CheckInstanceID(id)
		if err == nil {
			err = kafka.CheckInstanceID(id + ".zones")
		}
		fmt.Println(err)
	}
	// Output:
	// <nil>
	// kafka: group instance id "fleet/pod-0": character 6, '/', is not allowed (only a-z, A-Z, 0-9, '.', '_' and '-')
	// kafka: group instance id "pppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppp"...: 251 characters, past Kafka's limit of 249
}
