package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/fleetstream/fleetstream/kafka"
	"github.com/fleetstream/fleetstream/stream"
	"github.com/fleetstream/fleetstream/telemetry"
	"github.com/fleetstream/fleetstream/testenv"
)

// TestLateRequestsDeadLettered: ride requests late for the zone supply (a window after the
// repartition by zone) and for the time-to-pickup join (after the exchange by cab) are each
// dead-lettered exactly once, with reason late, the operator in their error, and the
// requests topic's name, partition and offset in their headers (the input record, not the
// supply or pickups repartition's, whose records are purged once committed), while the
// on-time requests reach zone-supply and ride-pickups; with and without -rekey-by-cab,
// which puts the telemetry's side of both through the cab repartition first. The pickups'
// dead letter holds the request as the requests topic does (it held the join's side in Go's
// field names, which DecodeRequest refuses).
//
// Six cabs report every 30 s for 100 minutes, each on its own partition: ten cycles of five
// minutes available and five hired on a new trip (a trip start, the pickup). Each cab gets,
// per cycle, a request made a minute in (counted by the zone supply) and one assigned to it
// two minutes before its trip starts (a pickup 120 s later), on the requests partition of
// its number. Once the job has read them and its watermark is past the late requests'
// windows, a request made and one assigned, both 70 minutes behind, and a request made in
// the last window, which is still open, are produced to requests partition 4. Packed: the
// on-time request first, then the late ones, in one produce request, so that they are read
// in one batch and go through the zone supply's repartition in one message, at one offset
// (kafka.Exchange packs a batch's records of a partition): the late request's dead letter
// named the on-time request's offset (helper-134's probe), now its own
// (stream.PartitionContext.UpstreamAt tells the message's records apart by event time).
func TestLateRequestsDeadLettered(t *testing.T) {
	t.Parallel()
	for _, rekey := range []bool{false, true} {
		for _, packed := range []bool{false, true} {
			t.Run(fmt.Sprintf("rekey-by-cab=%v/packed=%v", rekey, packed), func(t *testing.T) {
				t.Parallel()
				lateRequests(t, rekey, packed)
			})
		}
	}
}

func lateRequests(t *testing.T, rekey, packed bool) {
	s := needServices(t)
	r, requests := newRequestsRun(t, s, "late-req")
	topic := r.topic
	brokers := testenv.KafkaBrokers(t)
	prod := syncProducer(t, brokers, sarama.NewManualPartitioner)

	const (
		cabs   = 6
		cycles = 10
		lat    = 41.15
		lon    = -8.61
	)
	base := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Hour)
	cab := func(i int) string { return fmt.Sprintf("CAB-Q%d", i) }
	var msgs []*sarama.ProducerMessage
	for i := range cabs {
		for j := range cycles * 20 {
			status, trip := "available", ""
			if j%20 >= 10 {
				status, trip = "hired", fmt.Sprintf(`"trip_id":"T-%d-%d",`, i, j/20)
			}
			v := fmt.Sprintf(`{"cab_id":%q,%s"ts":%q,"lat":%v,"lon":%v,"speed_kmh":20,"status":%q}`,
				cab(i), trip, base.Add(time.Duration(j)*30*time.Second).Format(time.RFC3339), lat, lon, status)
			msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Partition: int32(i), Key: sarama.StringEncoder(cab(i)), Value: sarama.StringEncoder(v)})
		}
	}
	telemetryN := len(msgs)
	request := func(q telemetry.Request, part int32) *sarama.ProducerMessage {
		v, err := telemetry.AppendRequest(nil, q)
		require.NoError(t, err)
		return &sarama.ProducerMessage{Topic: requests, Partition: part, Key: sarama.StringEncoder(q.RequestID), Value: sarama.ByteEncoder(v)}
	}
	wantPickups := map[string]string{} // request id: its cab
	for i := range cabs {
		for k := range cycles {
			at := base.Add(time.Duration(k) * 10 * time.Minute)
			made := telemetry.Request{RequestID: fmt.Sprintf("R-M-%d-%d", k, i), Time: at.Add(time.Minute), Lat: lat, Lon: lon, Status: telemetry.RequestRequested}
			assigned := telemetry.Request{RequestID: fmt.Sprintf("R-A-%d-%d", k, i), Time: at.Add(3 * time.Minute), Lat: lat, Lon: lon,
				Status: telemetry.RequestAssigned, CabID: cab(i)}
			msgs = append(msgs, request(made, int32(i)), request(assigned, int32(i)))
			wantPickups[assigned.RequestID] = cab(i)
		}
	}
	require.NoError(t, prod.SendMessages(msgs))

	args := r.args(s, "-requests-topic", requests, "-exit-when-idle", "10s")
	if rekey {
		args = append(args, "-rekey-by-cab")
	}
	p := start(t, "fleetpipeline", pipelineBin, args...)
	// Every record read, and the watermark (the lowest of every partition's, the
	// repartitions' included) past the late requests' window and join bound: the requests'
	// last is at 93 minutes.
	ready := base.Add(90 * time.Minute)
	waitFor(t, 2*time.Minute, 50*time.Millisecond, "the records read and the watermark past "+ready.Format(time.RFC3339), func() bool {
		require.False(t, p.exited(), "fleetpipeline ended early:\n%s", tail(p.out.String(), 3000))
		records, _ := progress(p)
		return records == int64(len(msgs)) && !watermarkSeen(p).Before(ready)
	})
	late := base.Add(20*time.Minute + 30*time.Second)
	lateMade := telemetry.Request{RequestID: "R-LATE-M", Time: late, Lat: lat, Lon: lon, Status: telemetry.RequestRequested}
	lateAssigned := telemetry.Request{RequestID: "R-LATE-A", Time: late, Lat: lat, Lon: lon, Status: telemetry.RequestAssigned, CabID: cab(1)}
	onTime := telemetry.Request{RequestID: "R-LAST-M", Time: base.Add(99 * time.Minute), Lat: lat, Lon: lon, Status: telemetry.RequestRequested}
	offsets := map[string]int64{}
	if packed {
		batch := []*sarama.ProducerMessage{request(onTime, 4), request(lateMade, 4), request(lateAssigned, 4)}
		require.NoError(t, prod.SendMessages(batch))
		for _, m := range batch {
			require.EqualValues(t, 4, m.Partition)
		}
		for i, q := range []telemetry.Request{onTime, lateMade, lateAssigned} {
			offsets[q.RequestID] = batch[i].Offset
		}
	} else {
		for _, q := range []telemetry.Request{lateMade, lateAssigned, onTime} {
			part, off, err := prod.SendMessage(request(q, 4))
			require.NoError(t, err)
			require.EqualValues(t, 4, part)
			offsets[q.RequestID] = off
		}
	}
	out := p.succeed(t, 2*time.Minute)
	records, deadLetters, lateN := summary(t, out)
	require.EqualValues(t, telemetryN, records, "telemetry read")
	require.Zero(t, deadLetters)
	require.EqualValues(t, 2, lateN, "late records: the two late requests")
	reqRecords, reqDeadLetters := requestsSummary(t, out)
	require.EqualValues(t, len(msgs)-telemetryN+3, reqRecords, "ride requests read")
	require.Zero(t, reqDeadLetters, "ride requests dead-lettered by the source")

	// Each late request dead-lettered once, by the operator it was late for, naming its
	// record of the requests topic.
	zone := telemetry.EncodeGeohash(telemetry.Point{Lat: lat, Lon: lon}, telemetry.DefaultGeohashPrecision)
	got := map[string]int{}
	for _, dl := range readTopic(t, brokers, topic+".dlq", 2, 30*time.Second) {
		errText := headerValue(dl, kafka.HeaderError)
		t.Logf("dead letter %s: %s at %s/%s/%s", dl.Value, errText, headerValue(dl, kafka.HeaderSourceTopic),
			headerValue(dl, kafka.HeaderSourcePartition), headerValue(dl, kafka.HeaderSourceOffset))
		require.Equal(t, stream.ReasonLate, headerValue(dl, kafka.HeaderReason), "dead letter %s", dl.Value)
		require.Equal(t, requests, headerValue(dl, kafka.HeaderSourceTopic), "dead letter %s names the requests topic", dl.Value)
		require.Equal(t, "4", headerValue(dl, kafka.HeaderSourcePartition), "dead letter %s", dl.Value)
		var id string
		switch {
		case strings.HasPrefix(errText, "zone-supply: window: record at "+late.Format(time.RFC3339Nano)+" arrived after its window"):
			id = lateMade.RequestID
			require.Equal(t, zone, string(dl.Key), "the zone supply's dead letter is keyed by zone")
			var obs telemetry.SupplyObs
			require.NoError(t, json.Unmarshal(dl.Value, &obs))
			require.Equal(t, telemetry.SupplyObs{RequestID: lateMade.RequestID, Status: lateMade.Status}, obs)
		case strings.HasPrefix(errText, "pickups: join: record at "+late.Format(time.RFC3339Nano)+" arrived after the join's watermark"):
			id = lateAssigned.RequestID
			require.Equal(t, lateAssigned.CabID, string(dl.Key), "the pickups' dead letter is keyed by cab")
			q, err := telemetry.DecodeRequest(dl.Value)
			require.NoError(t, err, "the pickups' dead letter holds the request as its topic does: %s", dl.Value)
			require.Equal(t, lateAssigned, q)
		default:
			t.Fatalf("unexpected dead letter %s: %s", dl.Value, errText)
		}
		got[id]++
		require.Equal(t, strconv.FormatInt(offsets[id], 10), headerValue(dl, kafka.HeaderSourceOffset), "dead letter of %s", id)
	}
	require.Equal(t, map[string]int{lateMade.RequestID: 1, lateAssigned.RequestID: 1}, got, "dead letters by request")

	// The on-time requests, in their outputs: per window of five minutes, the six requests
	// made and the six cabs available (the last window: the request made late in the run).
	c := newOS(t, s)
	type supply struct{ requests, cabs int64 }
	wantSupply := map[time.Time]supply{base.Add(95 * time.Minute): {1, 0}}
	for k := range cycles {
		wantSupply[base.Add(time.Duration(k)*10*time.Minute)] = supply{cabs, cabs}
	}
	gotSupply := map[time.Time]supply{}
	for _, d := range byID(t, c.docs(r.index("zone-supply"))) {
		var z telemetry.ZoneSupply
		require.NoError(t, json.Unmarshal(d.Source, &z))
		require.Equal(t, zone, z.Zone)
		gotSupply[z.WindowStart.UTC()] = supply{z.Requests, z.AvailableCabs}
	}
	require.Equal(t, wantSupply, gotSupply, "zone supply by window")
	gotPickups := map[string]string{}
	for id, d := range byID(t, c.docs(r.index("ride-pickups"))) {
		var pk telemetry.RidePickup
		require.NoError(t, json.Unmarshal(d.Source, &pk))
		require.Equal(t, 120.0, pk.WaitS, "%s: %s", id, d.Source)
		gotPickups[id] = pk.CabID
	}
	require.Equal(t, wantPickups, gotPickups, "ride pickups: each request assigned on time, none of the late one")
}

var watermarkRE = regexp.MustCompile(`lag \d+  watermark (\S+)  windows`)

// watermarkSeen returns the watermark of the process's last status line, the zero time if
// none yet.
func watermarkSeen(p *proc) time.Time {
	m := watermarkRE.FindAllStringSubmatch(p.out.String(), -1)
	if len(m) == 0 {
		return time.Time{}
	}
	wm, _ := time.Parse(time.RFC3339, m[len(m)-1][1]) // "-" before any event: the zero time
	return wm
}
