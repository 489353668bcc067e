// Bulk responses: reading each item's result, the request errors, and the refusals that
// stop the sink.

package opensearch

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/fleetstream/fleetstream/stream"
)

// bulkItem is one item of a bulk response, under its action key.
type bulkItem struct {
	Status int        `json:"status"`
	Result string     `json:"result"`
	Error  *itemError `json:"error"`
}

type itemError struct {
	Type     string     `json:"type"`
	Reason   string     `json:"reason"`
	CausedBy *itemError `json:"caused_by"`
}

func (e *itemError) String() string {
	if e == nil {
		return ""
	}
	s := e.Reason
	if e.CausedBy != nil && e.CausedBy.Reason != "" {
		s += " (caused by " + e.CausedBy.Type + ": " + e.CausedBy.Reason + ")"
	}
	return s
}

// blockType is the error type of a write refused by an index or cluster block.
const blockType = "cluster_block_exception"

// requestError reads the error type and reason of a request refused whole with status:
// {"error":{"type":…,"reason":…},"status":400}, or an error given as a plain string; a body
// with nothing to read (OpenSearch's 413 has none) gives the status and its text.
func requestError(status int, body []byte) (typ, reason string) {
	if len(bytes.TrimSpace(body)) == 0 {
		return "", fmt.Sprintf("status %d: %s", status, http.StatusText(status))
	}
	var r struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(body, &r) == nil && len(r.Error) > 0 {
		var e itemError
		if json.Unmarshal(r.Error, &e) == nil && e.Type != "" {
			return e.Type, e.String()
		}
		var s string
		if json.Unmarshal(r.Error, &s) == nil {
			return "", s
		}
	}
	const max = 512
	if len(body) > max {
		body = body[:max]
	}
	return "", string(body)
}

// foreignRefusal says why a bulk request answered with status (not 200) cannot have been
// answered by OpenSearch's bulk API for what it holds, or "" when it may have been.
// OpenSearch answers a bulk request it ran with 200 (BulkResponse.status() is OK whatever its
// items say), so a 202 (an asynchronous gateway's Accepted) or a 204 says nothing of the
// documents, and no retry would. It serves POST /_bulk at the root of every node (and under
// an index name), so a 404, a 405 or a 501 (a plain web server's answer to POST) comes from
// something else. It refuses a request for a
// document with an error object that has a type (a 400 that the sink splits); a 400 without
// one (a TLS port's answer to plain HTTP, a proxy's page, OpenSearch's "no handler found for
// uri" at a path prefix) refuses every half of a split too, and would dead-letter every
// document alone.
func foreignRefusal(status int, body []byte) string {
	switch {
	case status > 200 && status < 300:
		return "a bulk answer other than 200 says nothing of the documents"
	case status == 404 || status == 405 || status == 501:
		return "no bulk API at this URL"
	case status == 400:
		if typ, _ := requestError(status, body); typ == "" {
			return "a refusal of the request, not of a document"
		}
	}
	return ""
}

// requestRefusal says why a bulk request refused whole with status is refused for what every
// request of the sink holds, not for one of its documents, or "" when it may be a document's
// fault (a 400 that the sink splits).
func requestRefusal(status int, body []byte) string {
	if status != 400 {
		return ""
	}
	if _, reason := requestError(status, body); strings.Contains(reason, "explicit index in bulk is not allowed") {
		return "the cluster refuses index names in bulk action lines (rest.action.multi.allow_explicit_index is false), which the sink always sends: set it to true"
	}
	return ""
}

type bulkResponse struct {
	Errors bool                  `json:"errors"`
	Items  []map[string]bulkItem `json:"items"`
}

var (
	errorsFalse   = []byte(`{"errors":false,"items":[`)
	resultCreated = []byte(`"result":"created"`)
	resultUpdated = []byte(`"result":"updated"`)
)

// results reads a 200 bulk response for the pending items of ch: it counts outcomes into r,
// appends items to retry (429, 5xx but 501 and 505, write blocks) to retry and permanently failed ones to
// rejected, and says what the first item to retry was answered (why). A response it cannot
// read as one item per document, in order, each with a status, is an error, and then nothing
// is counted, retried or rejected.
func (s *Sink[T]) results(resp []byte, ch *chunk, pending []item, r *BulkResult, retry []item, rejected []stream.DeadLetter) (_ []item, _ []stream.DeadLetter, why string, _ error) {
	// Fast path: without errors the filtered response holds only statuses and fixed result
	// words, so counting them is exact and needs no decoding.
	if bytes.HasPrefix(resp, errorsFalse) && bytes.HasSuffix(resp, []byte("]}")) {
		created := bytes.Count(resp, resultCreated)
		updated := bytes.Count(resp, resultUpdated)
		if created+updated == len(pending) {
			r.Created, r.Updated = created, updated
			ch.taken = true
			return retry, rejected, why, nil
		}
	}
	var br bulkResponse
	if err := json.Unmarshal(resp, &br); err != nil {
		return retry, rejected, "", fmt.Errorf("%w: not a bulk response: %w", ErrNotOpenSearch, err)
	}
	if br.Items == nil {
		// OpenSearch's bulk response always has items; another service's JSON has not.
		return retry, rejected, "", fmt.Errorf("%w: not a bulk response: no items", ErrNotOpenSearch)
	}
	if len(br.Items) != len(pending) {
		return retry, rejected, "", fmt.Errorf("%d items for %d documents", len(br.Items), len(pending))
	}
	// Every item is checked before any counts: a document is written or rejected only when
	// its own item says so, as an item of the action sent, with a status, and a success
	// with its result.
	for i, m := range br.Items {
		it, ok := m[s.cfg.op]
		switch {
		case len(m) != 1 || !ok:
			return retry, rejected, "", fmt.Errorf("item %d is not one %q result", i, s.cfg.op)
		case it.Status < 100 || it.Status > 599:
			return retry, rejected, "", fmt.Errorf("item %d has no valid status (%d)", i, it.Status)
		case it.Status >= 200 && it.Status < 300 && it.Result != "created" && it.Result != "updated" && it.Result != "noop":
			// "noop": an ingest pipeline's drop processor dropped the document, OpenSearch's
			// final answer for it.
			return retry, rejected, "", fmt.Errorf("item %d has status %d and result %q, not created or updated", i, it.Status, it.Result)
		}
	}
	var forbidden *forbiddenItems
	var refused []int // items refused for their index (indexRefusal)
	// taken: an item of the request went to an index that takes documents: written, found
	// existing, or judged on its own (a mapping conflict). An item turned away for now (429,
	// 5xx, a write block) is retried, and its retry's answer says whether its index takes
	// documents: counting it here would count documents that the retry finds refused for
	// their index.
	taken := false
	for i, m := range br.Items {
		it := m[s.cfg.op]
		switch {
		case it.Status >= 200 && it.Status < 300:
			taken = true
			switch it.Result {
			case "updated":
				r.Updated++
			case "created":
				r.Created++
			}
		case it.Status == 409 && s.cfg.op == OpCreate:
			taken = true
			r.Existed++
		case it.Error != nil && it.Error.Type == blockType:
			// index.blocks.write, read_only, or the flood-stage read_only_allow_delete
			// block (403 or 429): lifted by an operator or once disk is freed.
			r.Retry++
			r.Blocked++
			if r.Blocked == 1 {
				s.logBlocked(pending[i].index, it.Error.String())
			}
			retry = append(retry, pending[i])
			why = cmp.Or(why, retryWhy(pending[i], it))
		case it.Status != 408 && retryableStatus(it.Status) && !refusedForContent(it.Error):
			r.Retry++
			retry = append(retry, pending[i])
			why = cmp.Or(why, retryWhy(pending[i], it))
		case it.Status == 400 && mappingRace(it.Error) && !pending[i].raced:
			// Concurrent requests into a new index mapped a field each its own way, and this
			// one lost: the mapping is settled now, so the document is sent once more, to be
			// indexed or refused for good.
			r.Retry++
			r.raced++
			p := pending[i]
			p.raced = true
			retry = append(retry, p)
			why = cmp.Or(why, retryWhy(p, it))
		case it.Status == 401 || it.Status == 403:
			// Not the document's fault: the user or role may not write the index.
			r.Rejected++
			if forbidden == nil {
				forbidden = &forbiddenItems{index: pending[i].index, status: it.Status, err: it.Error}
			}
			forbidden.n++
		case indexRefusal(it.Error) != "":
			// The index cannot take any document (missing, closed, an alias without a
			// write index): decided below, once the whole request is seen.
			r.Rejected++
			refused = append(refused, i)
		default:
			taken = true
			r.Rejected++
			p := pending[i]
			var typ, reason string
			if it.Error != nil {
				typ, reason = it.Error.Type, it.Error.String()
			}
			rejected = append(rejected, rejectedLetter(p.index, p.id, bytes.Clone(ch.buf[p.doc:p.end-1]), it.Status, typ, reason))
		}
	}
	if forbidden != nil {
		return retry, rejected, why, forbidden
	}
	var letters []stream.DeadLetter
	for _, i := range refused {
		it, p := br.Items[i][s.cfg.op], pending[i]
		letters = append(letters, rejectedLetter(p.index, p.id, bytes.Clone(ch.buf[p.doc:p.end-1]), it.Status, it.Error.Type,
			it.Error.String()+" ("+indexRefusal(it.Error)+")"))
	}
	if taken {
		ch.taken = true
	}
	if len(refused) > 0 {
		// Whether the index refused is the one the output writes to (a fixed name, an alias,
		// today's daily index) or one made from the document is decided over the whole
		// Write, whose other items (in this request, its retries or other requests) may
		// have gone to indexes that take documents (Sink.Write).
		ch.refused = append(ch.refused, letters...)
		if ch.refusal == nil {
			it := br.Items[refused[0]][s.cfg.op]
			ch.refusal = &forbiddenItems{index: pending[refused[0]].index, status: it.Status, err: it.Error,
				hint: indexRefusal(it.Error), n: len(refused)}
		}
	}
	return retry, rejected, why, nil
}

// refusedForContent reports whether an item error with a 5xx status refuses the document
// for what it holds, which no retry changes: an ingest pipeline's fail processor, which
// OpenSearch answers with 500 (its exception has no status of its own). Such a document is
// dead-lettered.
func refusedForContent(e *itemError) bool {
	return e != nil && e.Type == "fail_processor_exception"
}

// mappingRace reports whether an item error is OpenSearch's refusal of a document whose
// dynamic mapping of a field lost to another's, made at the same time in a new index or data
// stream: "mapper [distance_km] cannot be changed from type [long] to [float]" when one
// request's first document mapped the field long and another's float. It names a field's
// type changing, which a document alone never asks for: a float written into a long field
// is coerced, a long into a float field too.
func mappingRace(e *itemError) bool {
	return e != nil && e.Type == "illegal_argument_exception" && strings.HasPrefix(e.Reason, "mapper [") &&
		strings.Contains(e.Reason, "] cannot be changed from type [")
}

// retryWhy describes the answer to an item that is sent again: its status, the error's type
// and reason, and the document's index and ID.
func retryWhy(p item, it bulkItem) string {
	why := fmt.Sprintf("status %d", it.Status)
	if it.Error != nil {
		why += " " + it.Error.Type + ": " + it.Error.String()
	}
	return fmt.Sprintf("%s (index %q, id %q)", why, p.index, p.id)
}

// indexRefusal returns what to do about an item error that refuses the index rather than the
// document, so that every document for that index would be refused alike: the index does
// not exist and may not be created (index_not_found_exception, with action.auto_create_index
// off or not matching it), it is closed (index_closed_exception), it is an alias without a
// write index, it is a data stream written with op type index, its default or final
// ingest pipeline does not exist, or its name breaks OpenSearch's rules for index names
// (invalid_index_name_exception: a fixed name in upper case, "Adopter-Upper", sent every
// document to the dead letters while the job exited 0). It returns "" for any other error,
// a document's own fault (a mapping conflict), which is dead-lettered. A batch all of whose
// documents were refused for their index fails Write permanently; when others of the batch
// went to indexes that take documents, the refused documents are dead-lettered (results,
// Sink.Write).
func indexRefusal(e *itemError) string {
	if e == nil {
		return ""
	}
	switch {
	case e.Type == "index_not_found_exception":
		return "the index does not exist and OpenSearch may not create it: create it, or let action.auto_create_index match its name"
	case e.Type == "index_closed_exception":
		return "the index is closed: open it (POST /<index>/_open)"
	case e.Type == "illegal_argument_exception" && strings.Contains(e.Reason, "no write index is defined for alias"):
		return "the alias has no write index: make one of its indexes the write index (is_write_index)"
	case e.Type == "illegal_argument_exception" && strings.Contains(e.Reason, "op_type of create are allowed in data streams"):
		return "the index is a data stream, which takes only op type create: write it with WithDataStream"
	case e.Type == "validation_exception" && strings.Contains(e.Reason, "maximum shards open"):
		return "the cluster's shard limit (cluster.max_shards_per_node) keeps OpenSearch from creating the index: delete old indexes or raise the limit"
	case e.Type == "illegal_argument_exception" && strings.HasPrefix(e.Reason, "pipeline with id [") && strings.HasSuffix(e.Reason, "] does not exist"):
		return "the index's ingest pipeline (index.default_pipeline or index.final_pipeline) does not exist: create it, or change the setting"
	case e.Type == "invalid_index_name_exception":
		return "OpenSearch refuses the index name; its index names are " + indexNameRules + ": change the name (CheckIndexName checks one)"
	}
	return ""
}

// forbiddenItems are the items of a bulk response refused with 401 or 403 other than a
// write block (the credentials or the role's permissions for an index), or refused for
// their index (indexRefusal): no retry and no dead letter fixes those. The sink fails Write
// with them, permanently, so that the batch is written again once the index or the
// permissions are right.
type forbiddenItems struct {
	index  string // the first one's
	status int
	err    *itemError
	hint   string // what to do about the index, if it is refused (indexRefusal)
	n      int
	url    string // the bulk URL of a response refused for its index, kept for the Write
}

func (f *forbiddenItems) Error() string {
	return fmt.Sprintf("%d document(s) refused with status %d", f.n, f.status)
}

// httpError is f as the error of the bulk request to url.
func (f *forbiddenItems) httpError(url string) *HTTPError {
	body := "(no error)"
	if f.err != nil {
		body = f.err.Type + ": " + f.err.String()
	}
	op := fmt.Sprintf("bulk: %d document(s) refused, the first for index %q", f.n, f.index)
	if f.hint != "" {
		op += ": " + f.hint
	}
	return &HTTPError{Op: op,
		Method: "POST", URL: url, Status: f.status, Body: body}
}
