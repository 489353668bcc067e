// The alerts the cab tracker raises: their types and severities, their IDs
// (AlertID) and their cab-alerts document.

package telemetry

import (
	"fmt"
	"strconv"
	"time"
)

// AlertType names what an [Alert] reports.
type AlertType string

// Alert types.
const (
	AlertSpeeding      AlertType = "speeding"
	AlertHarshBraking  AlertType = "harsh_braking"
	AlertLongIdle      AlertType = "long_idle"
	AlertGeofenceEnter AlertType = "geofence_enter"
	AlertGeofenceExit  AlertType = "geofence_exit"
	AlertDeviceSilent  AlertType = "device_silent"
)

// Severities of alerts.
const (
	SeverityInfo   = "info"
	SeverityLow    = "low"
	SeverityMedium = "medium"
	SeverityHigh   = "high"
)

// Alert is one alert of the cab tracker, shaped as a document of the
// cab-alerts index.
type Alert struct {
	// ID is deterministic: cab, type, fence (for geofence alerts) and start
	// time, so an alert fired again by a replay overwrites its first copy.
	ID    string    `json:"alert_id"`
	Type  AlertType `json:"type"`
	CabID string    `json:"cab_id"`
	// Time is when the condition started: the first event above the speed
	// limit, the reading before a harsh braking, the first idle event, the
	// event that crossed a fence, the last event before a silence.
	Time time.Time `json:"@timestamp"`
	// Location is where the cab was when the alert fired: the position of the
	// event that fired it (for device_silent, the last event), or the cab's last
	// good position when that event was a GPS jump.
	Location Location     `json:"location"`
	Severity string       `json:"severity"`
	Details  AlertDetails `json:"details"`
}

// AlertDetails are the figures of an alert; zero fields are left out.
//
//   - speeding: Value is the highest speed (km/h) up to the alert, Limit the
//     speed limit, DurationS how long the cab had been above it.
//   - harsh_braking: Value is the deceleration (m/s²), Limit the threshold,
//     DurationS the time between the two readings.
//   - long_idle: Value and DurationS are how long the cab had stood still
//     (s), Limit is WithIdleAfter (s).
//   - geofence_enter, geofence_exit: Fence names the geofence.
//   - device_silent: DurationS and Limit are WithSilentAfter (s).
type AlertDetails struct {
	Value     float64 `json:"value,omitempty"`
	Limit     float64 `json:"limit,omitempty"`
	DurationS float64 `json:"duration_s,omitempty"`
	Fence     string  `json:"fence,omitempty"`
}

// AlertID returns the ID of an alert: cab/type[/fence]/start, the start in
// RFC 3339 with nanoseconds, UTC.
func AlertID(cab string, typ AlertType, fence string, start time.Time) string {
	b := make([]byte, 0, len(cab)+len(typ)+len(fence)+40)
	b = append(b, cab...)
	b = append(b, '/')
	b = append(b, typ...)
	if fence != "" {
		b = append(b, '/')
		b = append(b, fence...)
	}
	b = append(b, '/')
	b = appendTime(b, start.UTC())
	return string(b)
}

// AppendJSON appends the document of a to dst, with the fields and meaning
// of its JSON tags. A figure that is NaN or infinite, or a time outside years
// 0000..9999, has no JSON encoding: the error wraps [ErrEncode] and dst is
// returned as it was.
func (a Alert) AppendJSON(dst []byte) ([]byte, error) {
	var c encCheck
	c.time("@timestamp", a.Time)
	c.num("location.lat", a.Location.Lat)
	c.num("location.lon", a.Location.Lon)
	c.num("details.value", a.Details.Value)
	c.num("details.limit", a.Details.Limit)
	c.num("details.duration_s", a.Details.DurationS)
	if c.err != nil {
		return dst, fmt.Errorf("alert %q: %w", a.ID, c.err)
	}
	dst = append(dst, `{"alert_id":`...)
	dst = appendString(dst, a.ID)
	dst = append(dst, `,"type":`...)
	dst = appendString(dst, string(a.Type))
	dst = append(dst, `,"cab_id":`...)
	dst = appendString(dst, a.CabID)
	dst = appendTimeField(dst, `,"@timestamp":`, a.Time)
	dst = append(dst, `,"location":`...)
	dst = appendLocation(dst, a.Location)
	dst = append(dst, `,"severity":`...)
	dst = appendString(dst, a.Severity)
	dst = append(dst, `,"details":{`...)
	n := len(dst)
	field := func(name string) {
		if len(dst) > n {
			dst = append(dst, ',')
		}
		dst = append(dst, name...)
	}
	d := a.Details
	if d.Value != 0 {
		field(`"value":`)
		dst = appendFloat(dst, d.Value)
	}
	if d.Limit != 0 {
		field(`"limit":`)
		dst = appendFloat(dst, d.Limit)
	}
	if d.DurationS != 0 {
		field(`"duration_s":`)
		dst = appendFloat(dst, d.DurationS)
	}
	if d.Fence != "" {
		field(`"fence":`)
		dst = appendString(dst, d.Fence)
	}
	return append(dst, '}', '}'), nil
}

func seconds(d int64) float64 { return float64(d) / float64(time.Second) }

// String returns a short description, for logs.
func (a Alert) String() string {
	return string(a.Type) + " " + a.CabID + " at " + a.Time.UTC().Format(time.RFC3339Nano) +
		" value=" + strconv.FormatFloat(a.Details.Value, 'g', 6, 64)
}
