// Command kafkaclients measures what reading a topic costs two Go Kafka clients, sarama (the
// one package kafka is built on) and franz-go, in CPU-seconds per million records and
// wall time: each reads every partition of the topic from its start to the end offset it
// had when the run began, the values untouched (no decoding, no processing), as Kafka's
// ConsumerPerformance does. It is its own module so that fleetstream does not depend on
// franz-go; it answers issue 15's question of how much of the fleet job's CPU budget the
// client's fetching and delivery take.
//
//	cd bench/kafkaclients && go run . -brokers 127.0.0.1:9092 -topic T -runs 5
//
// A topic to read: kafka/bench.sh's (FLEETSTREAM_BENCH_TOPIC=T go test -tags benchfill
// -run TestFillBenchTopic ./kafka/ fills T with 1,000,000 records of 200 bytes on 6
// partitions). The runs alternate between the clients, so that the machine's changes of
// speed fall on both.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	partitionBytes = 512 << 10 // per partition and fetch: package kafka's default
	requestBytes   = 2 << 20   // per fetch request: package kafka's default
)

func main() {
	brokers := flag.String("brokers", "127.0.0.1:9092", "a Kafka bootstrap broker")
	topic := flag.String("topic", "", "the topic to read (required)")
	runs := flag.Int("runs", 3, "runs of each client, alternating")
	flag.Parse()
	if *topic == "" {
		fmt.Fprintln(os.Stderr, "kafkaclients: -topic is required")
		os.Exit(2)
	}
	ends, err := endOffsets(*brokers, *topic)
	if err != nil {
		log.Fatalf("kafkaclients: %v", err)
	}
	var want int64
	for _, e := range ends {
		want += e
	}
	if want == 0 {
		log.Fatalf("kafkaclients: topic %s is empty", *topic)
	}
	for i := range *runs {
		for _, c := range []struct {
			name string
			read func(string, string, map[int32]int64) (int64, error)
		}{{"sarama", readSarama}, {"franz-go", readFranz}} {
			c0, t0 := cpuTime(), time.Now()
			n, err := c.read(*brokers, *topic, ends)
			took, cpu := time.Since(t0), cpuTime()-c0
			if err != nil {
				log.Fatalf("kafkaclients: %s: %v", c.name, err)
			}
			if n != want {
				log.Fatalf("kafkaclients: %s read %d records, want %d", c.name, n, want)
			}
			fmt.Printf("run %d %-8s %d records in %6.3f s, %.3f CPU-s per million records\n",
				i+1, c.name, n, took.Seconds(), cpu.Seconds()/float64(n)*1e6)
		}
	}
}

// cpuTime returns the CPU time (user and system) the process has used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// endOffsets returns the end offset of every partition of topic (assuming they start at 0).
func endOffsets(brokers, topic string) (map[int32]int64, error) {
	c, err := sarama.NewClient([]string{brokers}, sarama.NewConfig())
	if err != nil {
		return nil, err
	}
	defer c.Close()
	parts, err := c.Partitions(topic)
	if err != nil {
		return nil, err
	}
	ends := make(map[int32]int64, len(parts))
	for _, p := range parts {
		if ends[p], err = c.GetOffset(topic, p, sarama.OffsetNewest); err != nil {
			return nil, err
		}
	}
	return ends, nil
}

// readSarama reads with a partition consumer per partition, each record through its channel,
// as a consumer group's claim delivers them.
func readSarama(brokers, topic string, ends map[int32]int64) (int64, error) {
	sc := sarama.NewConfig()
	sc.Consumer.Fetch.Default = partitionBytes
	sc.Consumer.Fetch.MaxBytes = requestBytes
	sc.ChannelBufferSize = 128 // package kafka's
	c, err := sarama.NewConsumer([]string{brokers}, sc)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		total int64
		errs  []error
	)
	for p, end := range ends {
		if end == 0 {
			continue
		}
		pc, err := c.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			return 0, err
		}
		wg.Go(func() {
			defer pc.Close()
			var n int64
			for m := range pc.Messages() {
				n++
				if m.Offset+1 >= end {
					break
				}
			}
			mu.Lock()
			defer mu.Unlock()
			total += n
			if n == 0 {
				errs = append(errs, fmt.Errorf("partition %d: nothing read", p))
			}
		})
	}
	wg.Wait()
	return total, errors.Join(errs...)
}

// readFranz reads with one franz-go client polling fetches of all partitions.
func readFranz(brokers, topic string, ends map[int32]int64) (int64, error) {
	offsets := make(map[int32]kgo.Offset, len(ends))
	left := 0
	for p, end := range ends {
		if end > 0 {
			offsets[p] = kgo.NewOffset().AtStart()
			left++
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}),
		kgo.FetchMaxPartitionBytes(partitionBytes), kgo.FetchMaxBytes(requestBytes))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var n int64
	for left > 0 {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			return n, err
		}
		fs.EachRecord(func(r *kgo.Record) {
			n++
			if r.Offset+1 == ends[r.Partition] {
				left--
			}
		})
	}
	return n, nil
}
