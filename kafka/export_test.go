package kafka

// OpenOffsetTxn is openOffsetTxn for the external tests.
var OpenOffsetTxn = openOffsetTxn
