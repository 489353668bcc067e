// Ride requests from the booking app: their schema (Request, RequestStatus), validation and
// JSON codec (DecodeRequest, AppendRequest, RequestCodec).

package telemetry

import (
	"bytes"
	"encoding/json"
	"errors"
	"time"
)

// RequestStatus is where a ride request stands in the booking app.
type RequestStatus string

// The request statuses: a request is made (requested), then given to a cab (assigned, with the
// cab's ID) or given up by the rider (cancelled).
const (
	RequestRequested RequestStatus = "requested"
	RequestAssigned  RequestStatus = "assigned"
	RequestCancelled RequestStatus = "cancelled"
)

// Request is one update of a ride request, as the booking app writes it to its topic
// (cab-requests, keyed by request ID): one record when it is made, one when it is assigned or
// cancelled. In JSON:
//
//	{"request_id":"R-17","ts":"2026-01-01T00:03:10Z","lat":41.15,"lon":-8.61,"status":"assigned","cab_id":"CAB-0042"}
//
// cab_id is required when the status is assigned and absent otherwise; lat and lon are the
// pickup location.
type Request struct {
	RequestID string
	Time      time.Time
	Lat, Lon  float64
	Status    RequestStatus
	CabID     string
}

// Point returns the pickup location.
func (r Request) Point() Point { return Point{Lat: r.Lat, Lon: r.Lon} }

// Validate reports whether r satisfies the schema that [DecodeRequest] enforces. The error is a
// [*DecodeError] (Record "request") wrapping [ErrInvalid], with Offset -1.
func (r Request) Validate() error {
	fail := func(field, reason string) error {
		return &DecodeError{Record: "request", Field: field, Reason: reason, Offset: -1, Err: ErrInvalid}
	}
	if r.RequestID == "" {
		return fail("request_id", "missing or empty")
	}
	if s := checkString(r.RequestID); s != "" {
		return fail("request_id", s)
	}
	if r.Time.IsZero() {
		return fail("ts", "missing")
	}
	if r.Time.Before(minTime) || r.Time.After(maxTime) {
		return fail("ts", timeRangeReason)
	}
	if s := checkFloat(fLat, r.Lat); s != "" {
		return fail("lat", s)
	}
	if s := checkFloat(fLon, r.Lon); s != "" {
		return fail("lon", s)
	}
	switch r.Status {
	case RequestRequested, RequestCancelled:
		if r.CabID != "" {
			return fail("cab_id", "only an assigned request has a cab")
		}
	case RequestAssigned:
		if r.CabID == "" {
			return fail("cab_id", "missing or empty (the request is assigned)")
		}
		if s := checkString(r.CabID); s != "" {
			return fail("cab_id", s)
		}
	case "":
		return fail("status", "missing")
	default:
		return fail("status", "unknown status (requested, assigned or cancelled)")
	}
	return nil
}

// requestJSON is the wire form; pointers tell a missing field from a zero one.
type requestJSON struct {
	RequestID *string        `json:"request_id"`
	Time      *string        `json:"ts"`
	Lat       *float64       `json:"lat"`
	Lon       *float64       `json:"lon"`
	Status    *RequestStatus `json:"status"`
	CabID     *string        `json:"cab_id,omitempty"`
}

// DecodeRequest parses one JSON request and validates it. Every error is a [*DecodeError]
// (Record "request") wrapping [ErrMalformed] (not a single JSON object) or [ErrInvalid] (a
// missing, mistyped or out-of-range field). Unknown fields are ignored, as by [Decode].
func DecodeRequest(data []byte) (Request, error) {
	if t := bytes.TrimLeft(data, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return Request{}, &DecodeError{Record: "request", Reason: "not a JSON object", Offset: 0, Err: ErrMalformed}
	}
	var w requestJSON
	if err := json.Unmarshal(data, &w); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &typ):
			return Request{}, &DecodeError{Record: "request", Field: typ.Field, Reason: "not a JSON " + typ.Type.Kind().String(),
				Offset: int(typ.Offset), Err: ErrInvalid}
		case errors.As(err, &syn):
			return Request{}, &DecodeError{Record: "request", Reason: syn.Error(), Offset: int(syn.Offset), Err: ErrMalformed}
		default:
			return Request{}, &DecodeError{Record: "request", Reason: err.Error(), Offset: -1, Err: ErrMalformed}
		}
	}
	missing := func(field string) error {
		return &DecodeError{Record: "request", Field: field, Reason: "missing", Offset: -1, Err: ErrInvalid}
	}
	var r Request
	switch {
	case w.RequestID == nil:
		return Request{}, missing("request_id")
	case w.Time == nil:
		return Request{}, missing("ts")
	case w.Lat == nil:
		return Request{}, missing("lat")
	case w.Lon == nil:
		return Request{}, missing("lon")
	case w.Status == nil:
		return Request{}, missing("status")
	}
	t, err := time.Parse(time.RFC3339Nano, *w.Time)
	if err != nil {
		return Request{}, &DecodeError{Record: "request", Field: "ts", Reason: "not an RFC 3339 timestamp", Offset: -1, Err: ErrInvalid}
	}
	r.RequestID, r.Time, r.Lat, r.Lon, r.Status = *w.RequestID, t.UTC(), *w.Lat, *w.Lon, *w.Status
	if w.CabID != nil {
		r.CabID = *w.CabID
	}
	return r, r.Validate()
}

// AppendRequest appends r's JSON encoding to dst. It returns [Request.Validate]'s error for a
// request that would not decode.
func AppendRequest(dst []byte, r Request) ([]byte, error) {
	if err := r.Validate(); err != nil {
		return dst, err
	}
	dst = append(dst, `{"request_id":`...)
	dst = appendString(dst, r.RequestID)
	dst = append(dst, `,"ts":"`...)
	dst = appendTime(dst, r.Time)
	dst = append(dst, `","lat":`...)
	dst = appendFloat(dst, r.Lat)
	dst = append(dst, `,"lon":`...)
	dst = appendFloat(dst, r.Lon)
	dst = append(dst, `,"status":`...)
	dst = appendString(dst, string(r.Status))
	if r.CabID != "" {
		dst = append(dst, `,"cab_id":`...)
		dst = appendString(dst, r.CabID)
	}
	return append(dst, '}'), nil
}

// RequestCodec is the stream.Codec of requests: [AppendRequest] and [DecodeRequest].
type RequestCodec struct{}

// Append implements stream.Codec.
func (RequestCodec) Append(dst []byte, r Request) ([]byte, error) { return AppendRequest(dst, r) }

// Decode implements stream.Codec.
func (RequestCodec) Decode(b []byte) (Request, error) { return DecodeRequest(b) }
