// The next day's index, created ahead of midnight (WithIndexAhead).

package opensearch

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fleetstream/fleetstream/internal/lograte"
)

// WithIndexAhead makes the sink create the next UTC day's index in the background once it
// writes, in the last lead of a day by the wall clock, to that day's index named as DailyIndex
// names it (prefix-2006.01.02). OpenSearch otherwise creates an index on the first bulk request
// into it, and that request waits for the cluster to create it (40 to 90 ms each on an idle
// single node, more on a cluster with many indexes): after midnight, every daily output of a
// pipeline paid it in turn, in the first batch of the day. The index gets its settings and
// mappings from the index templates that match its name, as an index created by a bulk
// request does. Only indexes of a day about to start are created, never one of a past day (a
// backfill of old data writes them as before), and each at most once per minute, so that a
// refusal (a user without the right to create indexes) costs a request a minute; a refusal or
// failure is logged, and the first bulk request into the index creates it then. Close waits
// for creations under way. A next day's name that is already an alias (made by an
// operator's job) counts as created. Not with op type create (WithDataStream, WithOpType(OpCreate)):
// a data stream's backing indexes are OpenSearch's to create. lead must be within (0, 24h].
//
// It creates only what the first bulk request into the index would: a name that the
// cluster's action.auto_create_index keeps from being created by writes (false, or patterns
// that do not let it) is not created ahead, which is said once at Info (PUT /<index> would
// create it whatever the setting says). The setting is read with GET _cluster/settings, at
// most once a minute; where that is refused or fails, the index is created as if the setting
// allowed it. With several Config.Addresses, either request that gets no answer from its node
// (refused, reset, timed out) or a 408, 429 or 5xx (not 501 or 505) goes to the next address, as
// EnsureTemplates' requests do: a node that takes connections and never answers costs one
// request timeout, and neither it nor a node cut off from its cluster costs the setting or
// the creation.
//
// A next day's name that an index template makes a data stream of is left to its first
// write, without a Warn.
//
// Only daily names have a next day to predict. A monthly or weekly name (prefix-2026.11
// reads as November or as ISO week 11) or a fixed one gets nothing ahead; the first write of
// a sink into such a name says so at Warn, once.
//
// The creations of all the sinks of a Client run two at a time: OpenSearch's cluster
// manager creates indexes one after another, and a burst of them (an index per tenant)
// queues behind them every other request that needs it, such as a bulk request into a new
// index or with a new field.
func WithIndexAhead(lead time.Duration) SinkOption {
	return sinkOptionFunc(func(c *sinkConfig) {
		if lead <= 0 || lead > 24*time.Hour {
			c.errs = append(c.errs, invalid("WithIndexAhead", "%v: want 0 < lead <= 24h", lead))
		}
		c.ahead = lead
	})
}

// aheadRetry is how long a creation ahead that failed waits before a write tries it again,
// and how long the sink keeps what it read of action.auto_create_index.
const aheadRetry = time.Minute

// aheadConcurrency bounds the creations ahead of a Client's sinks in flight at once.
const aheadConcurrency = 2

// ahead creates the indexes of days about to start (WithIndexAhead).
type ahead struct {
	c      *Client
	logger *slog.Logger // the sink's (WithLogger)
	lead   time.Duration
	now    func() time.Time
	ctx    context.Context // ended by the sink's Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	log    *lograte.Limiter

	mu   sync.Mutex
	next map[string]time.Time // next day's index -> when a write may try it again

	notDaily atomic.Bool // a name without a day's date was written and logged

	setMu   sync.Mutex
	setting string    // action.auto_create_index as read at setAt
	setOK   bool      // whether it could be read then
	setAt   time.Time // zero: never read
}

func newAhead(c *Client, lead time.Duration, logger *slog.Logger) *ahead {
	ctx, cancel := context.WithCancel(context.Background())
	return &ahead{c: c, logger: logger, lead: lead, now: time.Now, ctx: ctx, cancel: cancel,
		log: lograte.New(3, time.Minute), next: make(map[string]time.Time)}
}

// nextDay returns the name DailyIndex gives the day after the one index names, and when that
// day starts; ok is false when index does not end in -2006.01.02.
func nextDay(index string) (next string, from time.Time, ok bool) {
	const layout = "2006.01.02"
	n := len(index) - len(layout)
	if n < 2 || index[n-1] != '-' {
		return "", time.Time{}, false
	}
	d, err := time.Parse(layout, index[n:])
	if err != nil {
		return "", time.Time{}, false
	}
	from = d.AddDate(0, 0, 1)
	return index[:n] + from.Format(layout), from, true
}

// saw notes a write into index, and starts creating the next day's index if that day starts
// within lead.
func (a *ahead) saw(index string) {
	next, from, ok := nextDay(index)
	if !ok {
		if !a.notDaily.Swap(true) {
			a.logger.Warn("opensearch: WithIndexAhead creates ahead only daily indexes named prefix-2006.01.02 (DailyIndex); this name has no next day to predict, so nothing is created ahead for it, nor for any other such name of this sink",
				"index", index)
		}
		return
	}
	now := a.now()
	if now.Before(from.Add(-a.lead)) || !now.Before(from) {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ctx.Err() != nil {
		return // the sink is closed
	}
	if at, ok := a.next[next]; ok && now.Before(at) {
		return
	}
	for name, at := range a.next {
		if at.Before(now.Add(-24 * time.Hour)) {
			delete(a.next, name) // days long gone
		}
	}
	a.next[next] = from // a write tries again only if this one fails
	a.wg.Go(func() {
		select {
		case a.c.aheadSlots <- struct{}{}:
		case <-a.ctx.Done():
			return // the sink is closed
		}
		defer func() { <-a.c.aheadSlots }()
		if !a.create(next) {
			a.mu.Lock()
			a.next[next] = now.Add(aheadRetry)
			a.mu.Unlock()
		}
	})
}

// create creates index and reports whether there is nothing left to do for it: it exists
// now, or it is not the sink's to create.
func (a *ahead) create(index string) bool {
	if setting, ok := a.autoCreateSetting(); ok && !autoCreates(setting, index) {
		a.logger.Info("opensearch: next day's index not created ahead: action.auto_create_index does not let OpenSearch create it, nor will the first bulk request into it; create it, or let the setting match its name",
			"index", index, "action.auto_create_index", setting)
		return true
	}
	path := "/" + url.PathEscape(index)
	r, err := a.c.doOnAnyNode(a.ctx, a.logger, "PUT", path, "", nil)
	if err == nil && r.status == 200 {
		a.logger.Info("opensearch: index created ahead of its day", "index", index)
		return true
	}
	if err == nil && r.status == 400 {
		// The index exists, or the name is an alias already (the day's index made by an
		// operator's job, named by an alias), which bulk requests write through.
		typ, reason := requestError(r.status, r.body)
		if typ == "resource_already_exists_exception" || typ == "invalid_index_name_exception" && strings.Contains(reason, "already exists as alias") {
			return true
		}
		// An index template makes a data stream of the name, which its first write
		// creates (and which takes only op type create: the write says so).
		if typ == "illegal_argument_exception" && strings.Contains(reason, "that creates data streams only") {
			a.logger.Debug("opensearch: next day's name is a data stream's, which its first write creates: nothing to create ahead", "index", index)
			return true
		}
	}
	if a.ctx.Err() != nil {
		return false
	}
	if err == nil {
		err = a.c.httpError("create index "+index, "PUT", path, r)
	}
	if ok, n := a.log.Allow(time.Now()); ok {
		a.logger.Warn("opensearch: could not create the next day's index ahead; the first bulk request into it will", "index", index, "err", err, "not_logged_since_last", n)
	}
	return false
}

// autoCreateSetting returns the cluster's action.auto_create_index, read at most once per
// aheadRetry; ok is false when it could not be read (a user without the right to read the
// cluster's settings, a cluster without that API).
func (a *ahead) autoCreateSetting() (setting string, ok bool) {
	a.setMu.Lock()
	defer a.setMu.Unlock()
	if !a.setAt.IsZero() && time.Since(a.setAt) < aheadRetry {
		return a.setting, a.setOK
	}
	a.setting, a.setOK = "", false
	r, err := a.c.doOnAnyNode(a.ctx, a.logger, "GET", "/_cluster/settings", "include_defaults=true&filter_path=*.action.auto_create_index", nil)
	if a.ctx.Err() != nil {
		return "", false // closed: not kept
	}
	a.setAt = time.Now()
	if err != nil || r.status != 200 {
		return "", false
	}
	var got map[string]struct {
		Action struct {
			AutoCreate json.RawMessage `json:"auto_create_index"`
		} `json:"action"`
	}
	if json.Unmarshal(r.body, &got) != nil {
		return "", false
	}
	for _, level := range []string{"transient", "persistent", "defaults"} { // the first set wins
		v := got[level].Action.AutoCreate
		if len(v) == 0 {
			continue
		}
		var str string
		if json.Unmarshal(v, &str) != nil {
			str = string(v) // a JSON boolean
		}
		a.setting, a.setOK = str, true
		break
	}
	return a.setting, a.setOK
}

// autoCreates reports whether action.auto_create_index set to setting lets a write create
// index, as OpenSearch decides it (AutoCreateIndex): true or false, or comma-separated
// patterns with * wildcards, each + (or no sign) to allow and - to forbid, the first that
// matches deciding; none matching forbids.
func autoCreates(setting, index string) bool {
	switch setting = strings.TrimSpace(setting); setting {
	case "true":
		return true
	case "false":
		return false
	}
	for p := range strings.SplitSeq(setting, ",") {
		p = strings.TrimSpace(p)
		allow := !strings.HasPrefix(p, "-")
		p = strings.TrimPrefix(strings.TrimPrefix(p, "+"), "-")
		if globMatch(p, index) {
			return allow
		}
	}
	return false
}

// globMatch reports whether s matches pattern, whose * stands for any run of characters
// (OpenSearch's Regex.simpleMatch).
func globMatch(pattern, s string) bool {
	first, rest, wild := strings.Cut(pattern, "*")
	if !wild {
		return pattern == s
	}
	if !strings.HasPrefix(s, first) {
		return false
	}
	s = s[len(first):]
	if rest == "" {
		return true
	}
	for i := 0; i <= len(s); i++ {
		if globMatch(rest, s[i:]) {
			return true
		}
	}
	return false
}

// close ends creations under way and waits for them.
func (a *ahead) close() {
	a.mu.Lock()
	a.cancel() // under mu: saw starts no creation after it
	a.mu.Unlock()
	a.wg.Wait()
}
