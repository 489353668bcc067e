// The fleet registry: a cab's registration (CabRegistration), its JSON codec, and the cab
// stats fields it fills in (CabStats.Register).

package telemetry

import (
	"bytes"
	"encoding/json"
	"errors"
)

// CabRegistration is a cab's entry in the fleet registry, as the registry writes it to its
// compacted topic (cab-registry, keyed by cab ID; a tombstone deregisters the cab):
//
//	{"cab_id":"CAB-0042","fleet":"north","vehicle_type":"ev","driver_id":"D-17"}
type CabRegistration struct {
	CabID       string `json:"cab_id"`
	Fleet       string `json:"fleet,omitempty"`
	VehicleType string `json:"vehicle_type,omitempty"`
	DriverID    string `json:"driver_id,omitempty"`
}

// Validate reports whether r satisfies the schema that [DecodeRegistration] enforces: a cab
// ID, and every field at most [MaxIDLen] bytes of UTF-8. The error is a [*DecodeError]
// (Record "registration") wrapping [ErrInvalid].
func (r CabRegistration) Validate() error {
	fail := func(field, reason string) error {
		return &DecodeError{Record: "registration", Field: field, Reason: reason, Offset: -1, Err: ErrInvalid}
	}
	if r.CabID == "" {
		return fail("cab_id", "missing or empty")
	}
	for _, f := range []struct{ name, v string }{{"cab_id", r.CabID}, {"fleet", r.Fleet}, {"vehicle_type", r.VehicleType}, {"driver_id", r.DriverID}} {
		if s := checkString(f.v); s != "" {
			return fail(f.name, s)
		}
	}
	return nil
}

// DecodeRegistration parses one JSON registration and validates it; errors are
// [*DecodeError]s (Record "registration") wrapping [ErrMalformed] or [ErrInvalid].
func DecodeRegistration(data []byte) (CabRegistration, error) {
	if t := bytes.TrimLeft(data, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return CabRegistration{}, &DecodeError{Record: "registration", Reason: "not a JSON object", Offset: 0, Err: ErrMalformed}
	}
	var r CabRegistration
	if err := json.Unmarshal(data, &r); err != nil {
		var typ *json.UnmarshalTypeError
		if errors.As(err, &typ) {
			return CabRegistration{}, &DecodeError{Record: "registration", Field: typ.Field, Reason: "not a JSON " + typ.Type.Kind().String(),
				Offset: int(typ.Offset), Err: ErrInvalid}
		}
		return CabRegistration{}, &DecodeError{Record: "registration", Reason: err.Error(), Offset: -1, Err: ErrMalformed}
	}
	return r, r.Validate()
}

// AppendRegistration appends r's JSON encoding to dst, or returns [CabRegistration.Validate]'s
// error.
func AppendRegistration(dst []byte, r CabRegistration) ([]byte, error) {
	if err := r.Validate(); err != nil {
		return dst, err
	}
	dst = append(dst, `{"cab_id":`...)
	dst = appendString(dst, r.CabID)
	for _, f := range []struct{ name, v string }{{`,"fleet":`, r.Fleet}, {`,"vehicle_type":`, r.VehicleType}, {`,"driver_id":`, r.DriverID}} {
		if f.v != "" {
			dst = append(dst, f.name...)
			dst = appendString(dst, f.v)
		}
	}
	return append(dst, '}'), nil
}

// Register returns s with the registry's fields of the cab filled in (fleet, vehicle_type and
// driver_id in the document).
func (s CabStats) Register(r CabRegistration) CabStats {
	s.Fleet, s.VehicleType, s.DriverID = r.Fleet, r.VehicleType, r.DriverID
	return s
}
