// The status document: what /status.json serves and the status page draws.

package prom

import "time"

// Status is the document /status.json serves and the status page draws. Times are RFC 3339;
// durations are in milliseconds; a figure the pipeline does not report is absent (null).
type Status struct {
	Pipeline  string    `json:"pipeline"`
	Now       time.Time `json:"now"`
	Started   time.Time `json:"started"`
	Healthy   bool      `json:"healthy"`
	Health    string    `json:"health"`
	Ready     bool      `json:"ready"`
	Readiness string    `json:"readiness"`
	// Banner is set while an output is failing or does not answer, or a source cannot reach
	// its system: what fails, since when, and the batch retrying or waiting.
	Banner string `json:"banner,omitempty"`

	Batches        int64      `json:"batches"`
	LastBatch      int64      `json:"last_batch"`
	LastBatchAt    *time.Time `json:"last_batch_at,omitempty"`
	Records        int64      `json:"records"`
	Bytes          int64      `json:"bytes"`
	InputRate      float64    `json:"input_rate"`   // records/s over the recent batches
	ProcessRate    float64    `json:"process_rate"` // records per second of processing time
	Watermark      *time.Time `json:"watermark,omitempty"`
	EventTimeLagMs *float64   `json:"event_time_lag_ms,omitempty"`
	Partitions     int        `json:"partitions"`
	// Duplicates counts the replayed records the repartitions dropped since the pipeline
	// started.
	Duplicates int64     `json:"duplicates"`
	Retry      *RetryDoc `json:"retry,omitempty"`

	History     []BatchDoc     `json:"history"`
	PartitionTb []PartitionDoc `json:"partition_table"`
	Operators   []OperatorDoc  `json:"operators"`
	Sinks       []SinkDoc      `json:"sinks"`
	DeadLetters []CountDoc     `json:"dead_letters"`
	// Unavailable names the figures the page leaves empty because the pipeline does not
	// report them (yet).
	Unavailable []string `json:"unavailable"`
}

// RetryDoc is the output retry in progress.
type RetryDoc struct {
	Batch   int64     `json:"batch"`
	Attempt int       `json:"attempt"`
	Since   time.Time `json:"since"`
	Error   string    `json:"error"`
}

// BatchDoc is one batch of the history.
type BatchDoc struct {
	At           time.Time `json:"at"`
	Batch        int64     `json:"batch"`
	Records      int       `json:"records"`
	InputRate    *float64  `json:"input_rate,omitempty"` // records / time since the previous batch
	ProcessRate  *float64  `json:"process_rate,omitempty"`
	ProcessingMs float64   `json:"processing_ms"`
	OutputMs     float64   `json:"output_ms"`
	CommitMs     float64   `json:"commit_ms"`   // the commit that ended during the batch (stream.BatchStats.CommitTime)
	DurationMs   float64   `json:"duration_ms"` // processing + output + the wait for commits (CommitWait)
	DelayMs      float64   `json:"delay_ms"`    // scheduling delay
	Attempts     int       `json:"attempts"`
}

// PartitionDoc is a row of the partition table; a figure that is not known is absent. Read is
// the offset after the newest record read (by the pipeline, or by the source when it reports
// SourceStats.Read: records in its input and dead letters count as read); Committed the next
// offset to read after a restart; End the high-water mark (SourceStats.End, else committed +
// commit lag). The commit lag is made of the records held back (read, not committed: open
// state needs them on a replay) and the read lag (End - Read, not read yet), which is 0 when
// the pipeline keeps up.
type PartitionDoc struct {
	Name      string `json:"name"`
	Read      *int64 `json:"read,omitempty"`
	Committed *int64 `json:"committed,omitempty"`
	End       *int64 `json:"end,omitempty"`
	ReadLag   *int64 `json:"read_lag,omitempty"`
	CommitLag *int64 `json:"commit_lag,omitempty"`
	HeldBack  *int64 `json:"held_back,omitempty"`
	// Watermark is the partition's own; EventTimeLagMs now minus it, at least 0.
	Watermark      *time.Time `json:"watermark,omitempty"`
	EventTimeLagMs *float64   `json:"event_time_lag_ms,omitempty"`
	// Idle is absent for a partition the pipeline does not report (only the source's lag).
	Idle  *bool `json:"idle,omitempty"`
	Ended bool  `json:"ended,omitempty"`
}

// OperatorDoc is a stateful operator's state, from stream.OperatorState. The figures after
// Entries are absent for an operator that does not report them (stream.StateReporter).
type OperatorDoc struct {
	Operator    string `json:"operator"`
	Entries     int    `json:"entries"`
	OpenWindows *int   `json:"open_windows,omitempty"`
	Bytes       *int64 `json:"bytes,omitempty"`
	Late        *int64 `json:"late,omitempty"`
	KeyLimit    *int64 `json:"key_limit,omitempty"`
	SplitKeys   *int64 `json:"split_keys,omitempty"`
	Unmatched   *int64 `json:"unmatched,omitempty"`
}

// SinkDoc is a sink's health and counters.
type SinkDoc struct {
	Name           string     `json:"name"`
	System         string     `json:"system,omitempty"`
	Failing        bool       `json:"failing"`
	FailingSince   *time.Time `json:"failing_since,omitempty"`
	FailedAttempts int64      `json:"failed_attempts"`
	LastError      string     `json:"last_error,omitempty"`
	// SlowSince is set while the sink's oldest request waits past its threshold
	// (SinkStats.SlowSince); WaitingMs is how long it has waited.
	SlowSince      *time.Time `json:"slow_since,omitempty"`
	WaitingMs      *float64   `json:"waiting_ms,omitempty"`
	Indexed        int64      `json:"indexed"`
	Updated        int64      `json:"updated"`
	Existed        int64      `json:"existed"`
	DeadLettered   int64      `json:"dead_lettered"`
	Retried        int64      `json:"retried"`
	RequestRetries int64      `json:"request_retries"`
	Blocked        int64      `json:"blocked"`
	Requests       int64      `json:"requests"`
	InFlightBytes  int64      `json:"in_flight_bytes"`
}

// CountDoc is a count of dead letters or late records by where and why.
type CountDoc struct {
	Where  string `json:"where"`
	Reason string `json:"reason"`
	Count  int64  `json:"count"`
}
