package telemetry

// DecodeBothWays decodes data with the fast path and with the general
// decoder apart, for the tests that hold one to the other.
func DecodeBothWays(data []byte, d *Decoder) (fast Event, fastOK bool, general Event, err error) {
	fastOK = decodeCompact(data, &fast, d)
	err = decodeGeneral(data, &general, d)
	return fast, fastOK, general, err
}
