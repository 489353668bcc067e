//go:build fleetstream_testhooks

package kafka

import (
	"fmt"
	"os"
	"time"
)

// With the fleetstream_testhooks tag (test builds of pipeline binaries only),
// FLEETSTREAM_TEST_EXCHANGE_JOIN_DELAY (a time.ParseDuration string) sets testJoinDelay.
func init() {
	v := os.Getenv("FLEETSTREAM_TEST_EXCHANGE_JOIN_DELAY")
	if v == "" {
		return
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		panic(fmt.Sprintf("kafka: FLEETSTREAM_TEST_EXCHANGE_JOIN_DELAY=%q: %v", v, err))
	}
	testJoinDelay = d
}
