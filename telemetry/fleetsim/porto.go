// The Porto replay: reading the ECML/PKDD 2015 Porto taxi sample into
// events (LoadPorto, ReadPorto) and replaying them as messages (Replay).

package fleetsim

import (
	"cmp"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fleetstream/fleetstream/telemetry"
)

// ErrPortoFormat is wrapped by the errors of [ReadPorto] for input that is
// not in the format of the Porto taxi sample.
var ErrPortoFormat = errors.New("fleetsim: bad Porto data")

// PortoInterval is the time between two points of a Porto POLYLINE.
const PortoInterval = 15 * time.Second

// PortoJumpKmh is the implied speed above which [PortoStats] counts two
// consecutive points as a GPS jump.
const PortoJumpKmh = 200

// PortoOptions adjusts a replay.
type PortoOptions struct {
	// Start, if set, shifts event times so that the first event is at Start.
	Start time.Time
	// Speedup divides the event time elapsed since the first event, to
	// replay hours of data in minutes; 0 means 1 (real pace).
	Speedup float64
}

// PortoStats describes the data read by [ReadPorto]. Times are the
// original ones, before Start and Speedup apply.
type PortoStats struct {
	Trips            int // rows
	EmptyTrips       int // rows with POLYLINE "[]"; they yield no event
	SinglePointTrips int
	MissingData      int // rows flagged MISSING_DATA=True (kept as they are)
	Points           int // events returned
	Taxis            int // distinct TAXI_IDs, empty trips included
	TaxisWithPoints  int // distinct cab IDs among the events
	RowsOutOfOrder   int // rows starting earlier than the row before
	RepeatedPoints   int // points identical to the previous point of their trip
	Jumps            int // consecutive points implying more than PortoJumpKmh
	Overlaps         int // pairs of trips of one taxi overlapping in time
	OverlapTaxis     int // taxis with at least one overlap
	First, Last      time.Time
}

// LoadPorto opens the file at path and calls [ReadPorto].
func LoadPorto(path string, opts PortoOptions) ([]telemetry.Event, PortoStats, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, PortoStats{}, fmt.Errorf("fleetsim: porto: %w", err)
	}
	defer f.Close()
	return ReadPorto(f, opts)
}

// ReadPorto reads trips in the CSV format of the ECML/PKDD 2015 taxi
// challenge (train.csv) and explodes each POLYLINE into events: point i of
// a trip is at TIMESTAMP + 15 s × i, with cab ID "PORTO-" + TAXI_ID, trip ID
// TRIP_ID and status hired. Events come sorted by time, ties broken by cab
// ID, then point index, then row order.
//
// Every point is kept, noise included (repeated points, GPS jumps,
// overlapping trips of one taxi): filtering is the consumer's job, and the
// stats report what is there. Rows with an empty POLYLINE produce no event
// and are counted as EmptyTrips.
func ReadPorto(r io.Reader, opts PortoOptions) ([]telemetry.Event, PortoStats, error) {
	var st PortoStats
	if opts.Speedup < 0 || math.IsNaN(opts.Speedup) || math.IsInf(opts.Speedup, 0) {
		return nil, st, fmt.Errorf("%w: Speedup %v must be positive", ErrInvalidOption, opts.Speedup)
	}
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return nil, st, fmt.Errorf("%w: header: %w", ErrPortoFormat, err)
	}
	col := map[string]int{}
	for i, name := range header {
		col[name] = i
	}
	for _, name := range []string{"TRIP_ID", "TAXI_ID", "TIMESTAMP", "MISSING_DATA", "POLYLINE"} {
		if _, ok := col[name]; !ok {
			return nil, st, fmt.Errorf("%w: header has no %s column", ErrPortoFormat, name)
		}
	}

	type point struct {
		e     telemetry.Event
		index int
	}
	type span struct{ start, end int64 }
	var (
		points  []point
		trips   = map[string][]span{} // by cab ID
		prevTS  int64
		polyBuf [][]float64
	)
	for row := 1; ; row++ {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, st, fmt.Errorf("%w: %w", ErrPortoFormat, err)
		}
		line, _ := cr.FieldPos(0)
		bad := func(format string, args ...any) error {
			return fmt.Errorf("%w: line %d: "+format, append([]any{ErrPortoFormat, line}, args...)...)
		}
		st.Trips++
		// Clone: fields share one string with the record's long POLYLINE.
		tripID, taxi := strings.Clone(rec[col["TRIP_ID"]]), rec[col["TAXI_ID"]]
		if taxi == "" {
			return nil, st, bad("empty TAXI_ID")
		}
		ts, err := strconv.ParseInt(rec[col["TIMESTAMP"]], 10, 64)
		if err != nil {
			return nil, st, bad("TIMESTAMP: %w", err)
		}
		if row > 1 && ts < prevTS {
			st.RowsOutOfOrder++
		}
		prevTS = ts
		if rec[col["MISSING_DATA"]] == "True" {
			st.MissingData++
		}
		polyBuf = polyBuf[:0]
		if err := json.Unmarshal([]byte(rec[col["POLYLINE"]]), &polyBuf); err != nil {
			return nil, st, bad("POLYLINE: %w", err)
		}
		cab := "PORTO-" + taxi
		if _, ok := trips[cab]; !ok {
			trips[cab] = nil
		}
		switch len(polyBuf) {
		case 0:
			st.EmptyTrips++
			continue
		case 1:
			st.SinglePointTrips++
		}
		trips[cab] = append(trips[cab], span{ts, ts + int64(len(polyBuf)-1)*int64(PortoInterval/time.Second)})
		for i, p := range polyBuf {
			if len(p) != 2 {
				return nil, st, bad("POLYLINE point %d has %d coordinates, want [lon, lat]", i, len(p))
			}
			e := telemetry.Event{
				CabID:  cab,
				TripID: tripID,
				Time:   time.Unix(ts, 0).Add(time.Duration(i) * PortoInterval).UTC(),
				Lat:    p[1],
				Lon:    p[0],
				Status: telemetry.StatusHired,
				Has:    telemetry.HasTripID,
			}
			if err := e.Validate(); err != nil {
				return nil, st, bad("POLYLINE point %d: %w", i, err)
			}
			if i > 0 {
				prev := polyBuf[i-1]
				if prev[0] == p[0] && prev[1] == p[1] {
					st.RepeatedPoints++
				} else if km := telemetry.Haversine(telemetry.Point{Lat: prev[1], Lon: prev[0]}, e.Point()); km/PortoInterval.Hours() > PortoJumpKmh {
					st.Jumps++
				}
			}
			points = append(points, point{e, i})
		}
	}

	st.Taxis = len(trips)
	for _, spans := range trips {
		if len(spans) == 0 {
			continue
		}
		st.TaxisWithPoints++
		slices.SortFunc(spans, func(a, b span) int { return cmp.Compare(a.start, b.start) })
		overlaps := 0
		for i := range spans {
			for j := i + 1; j < len(spans) && spans[j].start <= spans[i].end; j++ {
				overlaps++
			}
		}
		st.Overlaps += overlaps
		if overlaps > 0 {
			st.OverlapTaxis++
		}
	}

	slices.SortStableFunc(points, func(a, b point) int {
		if c := a.e.Time.Compare(b.e.Time); c != 0 {
			return c
		}
		if c := cmp.Compare(a.e.CabID, b.e.CabID); c != 0 {
			return c
		}
		return cmp.Compare(a.index, b.index)
	})
	events := make([]telemetry.Event, len(points))
	for i := range points {
		events[i] = points[i].e
	}
	st.Points = len(events)
	if len(events) == 0 {
		return events, st, nil
	}
	st.First, st.Last = events[0].Time, events[len(events)-1].Time
	if !opts.Start.IsZero() || (opts.Speedup != 0 && opts.Speedup != 1) {
		start := st.First
		if !opts.Start.IsZero() {
			start = opts.Start.UTC().Round(0)
		}
		speedup := opts.Speedup
		if speedup == 0 {
			speedup = 1
		}
		for i := range events {
			elapsed := events[i].Time.Sub(st.First)
			events[i].Time = start.Add(time.Duration(float64(elapsed) / speedup))
		}
	}
	return events, st, nil
}

// Replay returns messages for events, in order, shaped like [Sim.Next]
// messages (key = cab ID, value = JSON). An event without a JSON encoding (a
// NaN or infinite figure, a time outside years 0000..9999; never one of
// [LoadPorto]) comes out Malformed, its value the encoding error's text, so a
// pipeline dead-letters it rather than losing it.
func Replay(events []telemetry.Event) iter.Seq[Message] {
	return func(yield func(Message) bool) {
		for _, e := range events {
			v, ok := appendEvent(make([]byte, 0, 192), e)
			m := Message{Key: e.CabID, Value: v, Event: e}
			if !ok {
				m.Malformed, m.Faults = true, FaultMalformed
			}
			if !yield(m) {
				return
			}
		}
	}
}
