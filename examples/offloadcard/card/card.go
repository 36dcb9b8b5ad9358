package card

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/updraft-dev/updraft/hal"
)

// The card's resources, both counts.
const (
	// Queue is a hardware queue pair; each is owned by one function.
	Queue hal.Resource = "nic.queue"
	// Flow is an entry of the card's flow table.
	Flow hal.Resource = "nic.flow"
)

// Granularity returns the unit each card resource is planned in, whole
// queues and whole flow entries, for partition.Options.Granularity. A
// planner that honours [hal.Units] learns the same from [Card.Units].
func Granularity() hal.Vector { return hal.Vector{Queue: 1, Flow: 1} }

// units is what [Card.Units] reports.
var units = map[hal.Resource]hal.Unit{Queue: {Step: 1}, Flow: {Step: 1}}

// Limits of the simulated hardware.
const (
	MaxQueues = 4096
	MaxFlows  = 1 << 24
)

// Errors callers branch on; check with errors.Is.
var (
	// ErrOverLimit: the function would exceed its flow-entry limit.
	ErrOverLimit = errors.New("card: flow limit reached")
	// ErrTableFull: the shared part of the flow table is exhausted.
	ErrTableFull = errors.New("card: flow table full")
)

func init() { hal.Register("offloadcard", hal.DriverFunc(Open)) }

// Config is the JSON configuration of the "offloadcard" driver:
//
//	{"queues": 16, "flows": 4096, "functions": ["firewall", "nat"]}
type Config struct {
	// Queues is the number of hardware queues, 1 to MaxQueues.
	Queues int `json:"queues"`
	// Flows is the number of flow-table entries, 1 to MaxFlows.
	Flows int `json:"flows"`
	// Functions, when not empty, are the only functions the card serves
	// (its virtual functions); allocations for any other are refused.
	Functions []string `json:"functions,omitempty"`
	// State, when set, is a file standing in for the card's own memory,
	// which outlives the process that configured it: the queue table and
	// flow quotas are loaded from it by [New] and rewritten atomically
	// (temporary file, fsync, rename) after every change. A card opened
	// again on the same file, in another process, can then undo from a
	// journaled record. Installed flow entries (traffic) are not kept.
	State string `json:"state,omitempty"`
}

// Validate returns an error naming the field at fault.
func (c Config) Validate() error {
	if c.Queues < 1 || c.Queues > MaxQueues {
		return fmt.Errorf("card: config field \"queues\": %d is outside 1..%d", c.Queues, MaxQueues)
	}
	if c.Flows < 1 || c.Flows > MaxFlows {
		return fmt.Errorf("card: config field \"flows\": %d is outside 1..%d", c.Flows, MaxFlows)
	}
	seen := map[string]bool{}
	for i, f := range c.Functions {
		if f == "" {
			return fmt.Errorf("card: config field \"functions\"[%d] is empty", i)
		}
		if seen[f] {
			return fmt.Errorf("card: config field \"functions\"[%d]: %q is listed twice", i, f)
		}
		seen[f] = true
	}
	return nil
}

// Open parses config (see [Config]) and returns a new card. It is the
// driver registered as "offloadcard".
func Open(config string) (hal.Device, error) {
	dec := json.NewDecoder(bytes.NewReader([]byte(config)))
	dec.DisallowUnknownFields()
	var c Config
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("card: config: %w", err)
	}
	if dec.More() {
		return nil, errors.New("card: config: unexpected data after the JSON object")
	}
	k, err := New(c)
	if err != nil {
		return nil, err // not k: a nil *Card in a hal.Device is not a nil Device
	}
	return k, nil
}

// Card is a simulated SmartNIC. Each function it serves owns some of its
// queues outright and may install flow entries: up to its guarantee from
// entries reserved for it, beyond that from the shared rest of the table,
// up to its limit.
//
// All methods are safe for concurrent use. The zero value is not usable;
// call [New] or open it through hal.Open("offloadcard", config).
type Card struct {
	queues, flows int
	allowed       map[string]bool // nil: any function
	statePath     string          // "" keeps the configuration in memory only

	mu sync.Mutex // guards st
	st state
}

// state is everything Apply changes, so that Undo can put it back.
type state struct {
	owner     []string       // per queue, the function owning it ("" = free)
	reserved  map[string]int // flow entries reserved per function
	limit     map[string]int // flow entries a function may hold; absent = table size
	installed map[string]int // flow entries installed (traffic, not configuration)
}

func (s state) clone() state {
	return state{owner: slices.Clone(s.owner), reserved: maps.Clone(s.reserved), limit: maps.Clone(s.limit), installed: maps.Clone(s.installed)}
}

var (
	_ hal.Device    = (*Card)(nil)
	_ hal.Meter     = (*Card)(nil)
	_ hal.Journaled = (*Card)(nil)
	_ hal.Units     = (*Card)(nil)
)

// Units implements [hal.Units]: whole queues and whole flow entries.
func (k *Card) Units() map[hal.Resource]hal.Unit { return units }

// New returns a card configured by c, with all queues free and an empty
// flow table.
func New(c Config) (*Card, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	k := &Card{queues: c.Queues, flows: c.Flows}
	if len(c.Functions) > 0 {
		k.allowed = map[string]bool{}
		for _, f := range c.Functions {
			k.allowed[f] = true
		}
	}
	k.st = state{owner: make([]string, c.Queues), reserved: map[string]int{}, limit: map[string]int{}, installed: map[string]int{}}
	k.statePath = c.State
	if c.State != "" {
		if err := k.load(); err != nil {
			return nil, err
		}
	}
	return k, nil
}

// Capacity returns the card's queues and flow entries.
func (k *Card) Capacity(ctx context.Context) (hal.Vector, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("card: capacity: %w", err)
	}
	return hal.Vector{Queue: float64(k.queues), Flow: float64(k.flows)}, nil
}

// Apply gives each function the number of queues in its Guarantee, and
// reserves its flow-entry Guarantee with its Limit as ceiling (no Limit:
// the whole table). Quantities must be whole numbers (see [Card.Units]).
// Functions not in allocs keep what they had. Apply changes nothing if any
// allocation is refused or the guarantees in force afterwards exceed the
// card. The returned Undo gives back, of what this Apply changed, each
// queue's owner and each named function's flow quota as they were.
//
// A function already holding more flow entries than its new limit keeps
// them (a real card does not drop live flows) but cannot install more
// until it is back under the limit.
func (k *Card) Apply(ctx context.Context, allocs []hal.Allocation) (hal.Undo, error) {
	return k.apply(ctx, allocs, nil)
}

// ApplyJournaled implements [hal.Journaled]: it is Apply, and before it
// changes anything it journals a record of the owner of every queue the
// Apply reassigns and the flow quota (or none) of every function it
// names. [Card.UndoRecord] puts those back, on this card or on one opened
// again on the same [Config.State] file.
func (k *Card) ApplyJournaled(ctx context.Context, allocs []hal.Allocation, journal func([]byte) error) (hal.Undo, error) {
	if journal == nil {
		return nil, errors.New("card: apply: journal is nil")
	}
	return k.apply(ctx, allocs, journal)
}

func (k *Card) apply(ctx context.Context, allocs []hal.Allocation, journal func([]byte) error) (hal.Undo, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("card: apply: %w", err)
	}
	wants := make(map[string]grant, len(allocs))
	order := make([]string, 0, len(allocs))
	for _, a := range allocs {
		w, err := k.check(a)
		if err != nil {
			return nil, err
		}
		if _, dup := wants[a.Function]; dup {
			return nil, fmt.Errorf("card: apply: function %q has two allocations", a.Function)
		}
		wants[a.Function] = w
		order = append(order, a.Function)
	}
	slices.Sort(order)

	k.mu.Lock()
	defer k.mu.Unlock()
	next := k.st.clone()
	for i, o := range next.owner {
		if _, ok := wants[o]; ok {
			next.owner[i] = ""
		}
	}
	for _, f := range order {
		w := wants[f]
		for i := 0; i < len(next.owner) && w.queues > 0; i++ {
			if next.owner[i] == "" {
				next.owner[i] = f
				w.queues--
			}
		}
		if w.queues > 0 {
			return nil, fmt.Errorf("card: apply: function %q guarantee %q: %d more queues than the card has free (it has %d queues); nothing was changed",
				f, Queue, w.queues, k.queues)
		}
		next.reserved[f] = w.reserved
		if w.limit >= 0 {
			next.limit[f] = w.limit
		} else {
			delete(next.limit, f)
		}
	}
	total := 0
	for _, r := range next.reserved {
		total += r
	}
	if total > k.flows {
		return nil, fmt.Errorf("card: apply: %q: flow reservations total %d entries, the table has %d; nothing was changed", Flow, total, k.flows)
	}

	rec := record{Version: recordVersion, Device: "offloadcard", Queues: k.queues, Owners: map[int]string{}, Quotas: map[string]*quota{}}
	for i, o := range k.st.owner {
		if next.owner[i] != o {
			rec.Owners[i] = o
		}
	}
	for _, f := range order {
		rec.Quotas[f] = k.st.quotaOf(f)
	}
	if journal != nil {
		b, err := json.Marshal(rec)
		if err != nil {
			return nil, fmt.Errorf("card: apply: %w", err)
		}
		if err := journal(b); err != nil {
			return nil, fmt.Errorf("card: apply: journal: %w", err)
		}
	}
	if err := k.setLocked(next); err != nil {
		return nil, fmt.Errorf("card: apply: %w", err)
	}
	return hal.Once(func(ctx context.Context) error { return k.restore(ctx, rec) }), nil
}

// record is what ApplyJournaled journals: what the Apply is about to
// change, as it was before.
type record struct {
	Version int               `json:"v"`
	Device  string            `json:"device"`
	Queues  int               `json:"queues"` // the card's queue count, checked on undo
	Owners  map[int]string    `json:"owners"` // queue -> owner before ("" = free)
	Quotas  map[string]*quota `json:"quotas"` // function -> flow quota before (nil = none)
}

// quota is one function's flow-table configuration in a record.
type quota struct {
	Reserved int `json:"reserved"`
	Limit    int `json:"limit"` // -1: the whole table
}

const recordVersion = 1

// quotaOf returns f's flow quota, or nil when it has none.
func (s state) quotaOf(f string) *quota {
	r, ok := s.reserved[f]
	if !ok {
		if _, ok := s.limit[f]; !ok {
			return nil
		}
	}
	q := &quota{Reserved: r, Limit: -1}
	if l, ok := s.limit[f]; ok {
		q.Limit = l
	}
	return q
}

// UndoRecord implements [hal.Journaled]: it gives each queue in the record
// its owner before the journaled Apply, and each function its flow quota.
// It sets absolute values, so running it again does nothing more.
func (k *Card) UndoRecord(ctx context.Context, b []byte) error {
	rec, err := k.decodeRecord(b)
	if err != nil {
		return err
	}
	return k.restore(ctx, rec)
}

func (k *Card) decodeRecord(b []byte) (record, error) {
	var rec record
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rec); err != nil {
		return rec, fmt.Errorf("card: undo record: %w", err)
	}
	if dec.More() {
		return rec, errors.New("card: undo record: data after the record")
	}
	if rec.Device != "offloadcard" {
		return rec, fmt.Errorf("card: undo record: written by device %q, not offloadcard", rec.Device)
	}
	if rec.Version != recordVersion {
		return rec, fmt.Errorf("card: undo record: version %d, this driver reads %d", rec.Version, recordVersion)
	}
	if rec.Queues != k.queues {
		return rec, fmt.Errorf("card: undo record: field \"queues\": written for a card of %d queues, this one has %d", rec.Queues, k.queues)
	}
	for i, o := range rec.Owners {
		if i < 0 || i >= k.queues {
			return rec, fmt.Errorf("card: undo record: field \"owners\": queue %d is outside 0..%d", i, k.queues-1)
		}
		if o != "" && k.allowed != nil && !k.allowed[o] {
			return rec, fmt.Errorf("card: undo record: field \"owners\": queue %d: function %q is not served by this card", i, o)
		}
	}
	for f, q := range rec.Quotas {
		if f == "" {
			return rec, errors.New("card: undo record: field \"quotas\": empty function name")
		}
		if q != nil && (q.Reserved < 0 || q.Reserved > k.flows || q.Limit < -1 || q.Limit > k.flows) {
			return rec, fmt.Errorf("card: undo record: field \"quotas\": function %q: reserved %d, limit %d outside the table of %d", f, q.Reserved, q.Limit, k.flows)
		}
	}
	return rec, nil
}

// grant is one allocation in the card's whole units.
type grant struct {
	queues   int // queues owned
	reserved int // flow entries reserved
	limit    int // flow entries it may hold; -1 = the whole table
}

// check validates one allocation and converts it to a grant.
func (k *Card) check(a hal.Allocation) (w grant, err error) {
	if err := a.Validate(); err != nil {
		return w, fmt.Errorf("card: apply: %w", err)
	}
	if k.allowed != nil && !k.allowed[a.Function] {
		return w, fmt.Errorf("card: apply: function %q is not served by this card: %w", a.Function, hal.ErrUnknownFunction)
	}
	for _, v := range []hal.Vector{a.Guarantee, a.Limit} {
		for r := range v {
			if r != Queue && r != Flow {
				return w, fmt.Errorf("card: apply: function %q: resource %q is not on this card (it has %q and %q)", a.Function, r, Queue, Flow)
			}
		}
	}
	if err := hal.CheckUnits(units, a); err != nil {
		return w, fmt.Errorf("card: apply (plan with a planner that honours hal.Units, or partition.Options{Granularity: card.Granularity()}): %w", err)
	}
	whole := func(field string, r hal.Resource, q float64) (int, error) {
		if q != math.Trunc(q) {
			return 0, fmt.Errorf("card: apply: function %q %s %q: %v is not a whole number: %w", a.Function, field, r, q, hal.ErrNotInUnits)
		}
		return int(q), nil
	}
	if w.queues, err = whole("guarantee", Queue, a.Guarantee[Queue]); err != nil {
		return w, err
	}
	if w.reserved, err = whole("guarantee", Flow, a.Guarantee[Flow]); err != nil {
		return w, err
	}
	w.limit = -1
	if l, ok := a.Limit[Flow]; ok && l < float64(k.flows) {
		if w.limit, err = whole("limit", Flow, l); err != nil {
			return w, err
		}
	}
	return w, nil
}

func (k *Card) restore(ctx context.Context, rec record) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("card: undo: %w", err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	next := k.st.clone()
	for i, o := range rec.Owners {
		next.owner[i] = o
	}
	for f, q := range rec.Quotas {
		delete(next.reserved, f)
		delete(next.limit, f)
		if q == nil {
			continue
		}
		next.reserved[f] = q.Reserved
		if q.Limit >= 0 {
			next.limit[f] = q.Limit
		}
	}
	total := 0
	for _, r := range next.reserved {
		total += r
	}
	if total > k.flows {
		return fmt.Errorf("card: undo: flow reservations would total %d entries, the table has %d (was the card changed since?); nothing was changed", total, k.flows)
	}
	if err := k.setLocked(next); err != nil {
		return fmt.Errorf("card: undo: %w", err)
	}
	return nil
}

// setLocked puts next in force, and in the state file when there is one.
// Installed entries are traffic, not configuration: the current ones stay.
func (k *Card) setLocked(next state) error {
	next.installed = k.st.installed
	if k.statePath != "" {
		b, err := json.Marshal(stateFile{Queues: k.queues, Owners: next.owner, Reserved: next.reserved, Limit: next.limit})
		if err != nil {
			return err
		}
		if err := writeFileAtomic(k.statePath, b); err != nil {
			return fmt.Errorf("state file: %w", err)
		}
	}
	k.st = next
	return nil
}

// stateFile is what Config.State holds.
type stateFile struct {
	Queues   int            `json:"queues"`
	Owners   []string       `json:"owners"`
	Reserved map[string]int `json:"reserved"`
	Limit    map[string]int `json:"limit"`
}

// load reads the state file, if it exists, into k.st.
func (k *Card) load() error {
	b, err := os.ReadFile(k.statePath)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("card: config field \"state\": %w", err)
	}
	var st stateFile
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("card: state file %s: %w", k.statePath, err)
	}
	if st.Queues != k.queues || len(st.Owners) != k.queues {
		return fmt.Errorf("card: state file %s: written for a card of %d queues, this one has %d", k.statePath, st.Queues, k.queues)
	}
	total := 0
	for f, r := range st.Reserved {
		if r < 0 {
			return fmt.Errorf("card: state file %s: function %q reserves %d flow entries", k.statePath, f, r)
		}
		total += r
	}
	if total > k.flows {
		return fmt.Errorf("card: state file %s: reservations total %d flow entries, the table has %d", k.statePath, total, k.flows)
	}
	for f, l := range st.Limit {
		if l < 0 {
			return fmt.Errorf("card: state file %s: function %q has a flow limit of %d", k.statePath, f, l)
		}
	}
	for i, o := range st.Owners {
		if o != "" && k.allowed != nil && !k.allowed[o] {
			return fmt.Errorf("card: state file %s: queue %d: function %q is not served by this card", k.statePath, i, o)
		}
	}
	k.st.owner = st.Owners
	if st.Reserved != nil {
		k.st.reserved = st.Reserved
	}
	if st.Limit != nil {
		k.st.limit = st.Limit
	}
	return nil
}

// writeFileAtomic replaces path with b: temporary file, fsync, rename,
// fsync of the directory.
func writeFileAtomic(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Usage returns the queues function owns and the flow entries it has
// installed.
func (k *Card) Usage(ctx context.Context, function string) (hal.Vector, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("card: usage: %w", err)
	}
	if k.allowed != nil && !k.allowed[function] {
		return nil, fmt.Errorf("card: usage of %q: %w", function, hal.ErrUnknownFunction)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	queues := 0
	for _, o := range k.st.owner {
		if o == function {
			queues++
		}
	}
	return hal.Vector{Queue: float64(queues), Flow: float64(k.st.installed[function])}, nil
}

// InstallFlows installs n flow entries for function, as its traffic would:
// from its reservation first, then from the shared rest of the table. It
// fails with [ErrOverLimit] past the function's limit and with
// [ErrTableFull] when the shared part is exhausted; then nothing is
// installed.
func (k *Card) InstallFlows(function string, n int) error {
	if n < 0 {
		return fmt.Errorf("card: install flows for %q: negative count %d", function, n)
	}
	if k.allowed != nil && !k.allowed[function] {
		return fmt.Errorf("card: install flows for %q: %w", function, hal.ErrUnknownFunction)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	s := &k.st
	have := s.installed[function]
	limit, ok := s.limit[function]
	if !ok {
		limit = k.flows
	}
	if have+n > limit {
		return fmt.Errorf("card: install %d flows for %q holding %d: limit is %d: %w", n, function, have, limit, ErrOverLimit)
	}
	// Entries beyond each function's reservation come from the shared pool.
	shared := k.flows
	used := 0
	for f, r := range s.reserved {
		shared -= r
		used += max(0, s.installed[f]-r)
	}
	for f, i := range s.installed {
		if _, ok := s.reserved[f]; !ok {
			used += i
		}
	}
	extra := max(0, have+n-s.reserved[function]) - max(0, have-s.reserved[function])
	if used+extra > shared {
		return fmt.Errorf("card: install %d flows for %q: %d of %d shared entries in use: %w", n, function, used, shared, ErrTableFull)
	}
	s.installed[function] = have + n
	return nil
}

// RemoveFlows removes up to n of function's installed flow entries.
func (k *Card) RemoveFlows(function string, n int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.st.installed[function] = max(0, k.st.installed[function]-n)
	if k.st.installed[function] == 0 {
		delete(k.st.installed, function)
	}
}

// QueueOwners returns, per queue, the function owning it ("" when free).
func (k *Card) QueueOwners() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.st.owner)
}

// FlowQuota is one function's flow-table configuration.
type FlowQuota struct {
	Reserved int // entries reserved for the function
	Limit    int // most it may hold (the table size when unlimited)
}

// FlowQuotas returns the flow-table configuration per function.
func (k *Card) FlowQuotas() map[string]FlowQuota {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := map[string]FlowQuota{}
	for f, r := range k.st.reserved {
		out[f] = FlowQuota{Reserved: r, Limit: k.flows}
	}
	for f, l := range k.st.limit {
		q := out[f]
		q.Limit = l
		out[f] = q
	}
	return out
}
