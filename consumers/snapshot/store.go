package snapshot

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// Snapshot states, Status.State.
const (
	StateQueued  = "queued"  // encoded, waiting in memory for the writer
	StateDurable = "durable" // the file and its directory entry are fsynced
	StateFailed  = "failed"  // the write failed after its retries; see Error
)

// Status is what the daemon knows about one snapshot. It is the JSON of the
// admin API's answers and of the notifications.
type Status struct {
	ID            string    `json:"id"`
	Path          string    `json:"path"`
	Width         int       `json:"width"`
	Height        int       `json:"height"`
	Bytes         int       `json:"bytes"`
	Seq           uint64    `json:"seq"`
	CaptureMonoNS int64     `json:"capture_mono_ns"`
	CaptureTime   time.Time `json:"capture_time"`
	Encoder       string    `json:"encoder"`
	Quality       int       `json:"quality"`
	EncodeSeconds float64   `json:"encode_seconds"`     // turning the frame into a JPEG
	HoldSeconds   float64   `json:"lease_hold_seconds"` // receiving the frame to releasing its lease
	State         string    `json:"state"`
	Durable       bool      `json:"durable"`
	Error         string    `json:"error,omitempty"`
	Attempts      int       `json:"attempts,omitempty"`
	WriteSeconds  float64   `json:"write_seconds,omitempty"` // accepted to durable (or failed)
}

// maxRecords bounds the statuses kept for GET /snapshot/{id}; the oldest
// finished ones are forgotten first.
const maxRecords = 4096

// maxBatch is how many queued snapshots share one directory fsync.
const maxBatch = 16

// snapshotName matches the files this package writes: capture time (UTC,
// sortable) and id. Retention only ever deletes such files.
var snapshotName = regexp.MustCompile(`^\d{8}T\d{6}\.\d{9}Z-[0-9a-f]+\.jpg$`)

// fileName is the name of a snapshot captured at t with id.
func fileName(t time.Time, id string) string {
	return t.UTC().Format("20060102T150405.000000000Z") + "-" + id + ".jpg"
}

type storeConfig struct {
	dir       string
	w         Writer
	capacity  int
	keepCount int
	keepBytes int64
	retries   int
	backoff   time.Duration
	log       *slog.Logger
	m         *metrics
	notify    func(Status)
}

// store is the bounded in-memory write queue and its writer goroutine
// (run). Requests reserve a slot before they take a frame, so a full queue
// refuses at once and nothing accepted is ever dropped; the writer writes
// in batches sharing one directory fsync, retries storage errors with
// backoff, then applies retention.
type store struct {
	storeConfig

	mu       sync.Mutex
	reserved int       // slots taken: encoding, queued or being written
	queue    []*record // accepted, not yet durable or failed: the writer's work
	records  map[string]*record
	order    []*record // records oldest first, to bound their number
	failing  bool      // the last storage operation failed
	closed   bool
	wake     chan struct{} // capacity 1: work for the writer

	// Retention state, used by the writer goroutine only.
	files []diskFile // oldest (smallest name) first
	bytes int64
}

type diskFile struct {
	name string
	size int64
}

type record struct {
	st       Status    // guarded by store.mu
	data     []byte    // until written
	accepted time.Time // for the write latency
	done     chan struct{}
}

// newStore scans dir for the snapshots of earlier runs (retention counts
// them) and removes temporary files a crash left behind.
func newStore(cfg storeConfig) (*store, error) {
	s := &store{storeConfig: cfg, records: make(map[string]*record), wake: make(chan struct{}, 1)}
	ents, err := os.ReadDir(cfg.dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) { // an injected Writer may not use dir
		return nil, fmt.Errorf("snapshot: scan directory %s: %w", cfg.dir, err)
	}
	for _, e := range ents {
		name := e.Name()
		switch {
		case strings.HasPrefix(name, ".") && strings.HasSuffix(name, ".jpg.tmp") && e.Type().IsRegular():
			s.log.Warn("removing an unfinished snapshot left by an earlier run", "file", name)
			if err := os.Remove(filepath.Join(cfg.dir, name)); err != nil {
				s.log.Warn("cannot remove unfinished snapshot", "file", name, "err", err)
			}
		case snapshotName.MatchString(name) && e.Type().IsRegular():
			if fi, err := e.Info(); err == nil {
				s.files = append(s.files, diskFile{name: name, size: fi.Size()})
				s.bytes += fi.Size()
			}
		}
	}
	slices.SortFunc(s.files, func(a, b diskFile) int { return strings.Compare(a.name, b.name) })
	return s, nil
}

// slot is a reserved place in the write queue. Exactly one of accept or
// cancel must follow.
type slot struct {
	s    *store
	used bool
}

// reserve takes a queue slot, or fails with ErrBusy when the queue is full.
func (s *store) reserve() (*slot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrStopping
	}
	if s.reserved >= s.capacity {
		return nil, fmt.Errorf("%w: %d snapshots are waiting to be written (queue of %d); the storage is slower than the snapshots asked for",
			ErrBusy, s.reserved, s.capacity)
	}
	s.reserved++
	return &slot{s: s}, nil
}

// cancel gives the slot back (the snapshot was not taken).
func (sl *slot) cancel() {
	if sl.used {
		return
	}
	sl.used = true
	s := sl.s
	s.mu.Lock()
	s.reserved--
	s.mu.Unlock()
	s.signal()
}

// accept queues data for writing and returns the snapshot's status, with
// its id and path.
func (s *store) accept(sl *slot, st Status, data []byte) Status {
	sl.used = true
	st.ID = newID()
	st.Path = filepath.Join(s.dir, fileName(st.CaptureTime, st.ID))
	st.Bytes = len(data)
	st.State = StateQueued
	r := &record{st: st, data: data, accepted: time.Now(), done: make(chan struct{})}
	s.mu.Lock()
	s.records[st.ID] = r
	s.order = append(s.order, r)
	s.forgetLocked()
	s.queue = append(s.queue, r)
	s.m.queueDepth.Set(float64(len(s.queue)))
	s.mu.Unlock()
	s.signal()
	return st
}

// forgetLocked drops the oldest finished records beyond maxRecords.
func (s *store) forgetLocked() {
	for i := 0; len(s.order) > maxRecords && i < len(s.order); {
		r := s.order[i]
		if r.st.State == StateQueued {
			i++
			continue
		}
		delete(s.records, r.st.ID)
		s.order = slices.Delete(s.order, i, i+1)
	}
}

func (s *store) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// status returns the status of snapshot id.
func (s *store) status(id string) (Status, chan struct{}, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.records[id]
	if r == nil {
		return Status{}, nil, false
	}
	return r.st, r.done, true
}

// queued returns the number of accepted snapshots not yet durable or failed.
func (s *store) queued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}

// healthy reports whether the last storage operation succeeded.
func (s *store) healthy() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.failing
}

// run writes queued snapshots until ctx is done, then goes on until every
// reserved slot is written or given back, for at most drain; what is left
// then is reported failed. Retries are not cut short by ctx: an accepted
// snapshot must reach the disk if it can.
func (s *store) run(ctx context.Context, drain time.Duration) {
	s.retain() // files of earlier runs may exceed the limits
	for {
		for s.batch(context.Background()) {
		}
		select {
		case <-ctx.Done():
			s.drain(drain)
			return
		case <-s.wake:
		}
	}
}

func (s *store) drain(timeout time.Duration) {
	dctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		for s.batch(dctx) {
		}
		s.mu.Lock()
		if s.reserved == 0 || dctx.Err() != nil {
			s.closed = true
			left := s.queue
			s.queue = nil
			s.mu.Unlock()
			for _, r := range left {
				s.finish(r, errors.New("the daemon stopped before the snapshot was written"))
			}
			return
		}
		s.mu.Unlock()
		select {
		case <-dctx.Done():
		case <-s.wake:
		}
	}
}

// batch writes up to maxBatch queued snapshots, fsyncs the directory once
// for all of them, and applies retention. It reports whether it did work.
func (s *store) batch(ctx context.Context) bool {
	s.mu.Lock()
	n := min(len(s.queue), maxBatch)
	batch := slices.Clone(s.queue[:n]) // finish removes records from s.queue
	s.mu.Unlock()
	if n == 0 {
		return false
	}
	written := make([]*record, 0, n)
	for _, r := range batch {
		name := filepath.Base(r.st.Path)
		err := s.retry(ctx, "write", r, func() error { return s.w.Write(name, r.data) })
		if err != nil {
			s.finish(r, err)
			continue
		}
		written = append(written, r)
	}
	if len(written) > 0 {
		err := s.retry(ctx, "sync", nil, s.w.Sync)
		if err == nil {
			// Retention first, so that a notified snapshot finds the
			// directory as retention leaves it.
			for _, r := range written {
				s.addFile(filepath.Base(r.st.Path), int64(len(r.data)))
			}
			s.retain()
		}
		for _, r := range written {
			s.finish(r, err)
		}
	}
	return true
}

// addFile records a durable file for retention.
func (s *store) addFile(name string, size int64) {
	i, _ := slices.BinarySearchFunc(s.files, name, func(f diskFile, n string) int { return strings.Compare(f.name, n) })
	s.files = slices.Insert(s.files, i, diskFile{name: name, size: size})
	s.bytes += size
}

// retry runs op until it succeeds or failed 1+retries times, waiting
// backoff, then twice as long, between attempts. Every failure is logged
// and counted by reason (ENOSPC, EIO...).
func (s *store) retry(ctx context.Context, what string, r *record, op func() error) error {
	wait := s.backoff
	for attempt := 1; ; attempt++ {
		if r != nil {
			s.mu.Lock()
			r.st.Attempts = attempt
			s.mu.Unlock()
		}
		err := op()
		s.mu.Lock()
		s.failing = err != nil
		s.mu.Unlock()
		if err == nil {
			return nil
		}
		reason := failureReason(err)
		s.m.failures.WithLabelValues(what + "_" + reason).Inc()
		log := s.log.With("op", what, "reason", reason, "attempt", attempt, "err", err)
		if r != nil {
			log = log.With("id", r.st.ID)
		}
		if attempt > s.retries {
			log.Error("snapshot storage failed; giving up")
			return fmt.Errorf("%s failed %d times (%s): %w", what, attempt, reason, err)
		}
		log.Error("snapshot storage failed; retrying", "retry_in", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done(): // the drain deadline at shutdown
			t.Stop()
			return fmt.Errorf("%s failed %d times (%s), no time left to retry: %w", what, attempt, reason, err)
		case <-t.C:
		}
		wait *= 2
	}
}

// finish records the outcome of r's write (err nil: durable), frees its
// data and slot, counts and notifies; waiters wake up last, when all of it
// is visible.
func (s *store) finish(r *record, err error) {
	now := time.Now()
	s.mu.Lock()
	if i := slices.Index(s.queue, r); i >= 0 {
		s.queue = slices.Delete(s.queue, i, i+1)
	}
	r.data = nil
	r.st.WriteSeconds = now.Sub(r.accepted).Seconds()
	if err == nil {
		r.st.State, r.st.Durable = StateDurable, true
	} else {
		r.st.State, r.st.Error = StateFailed, err.Error()
	}
	st := r.st
	s.reserved--
	s.m.queueDepth.Set(float64(len(s.queue)))
	s.mu.Unlock()
	if err != nil {
		s.m.failures.WithLabelValues("gave_up").Inc()
	} else {
		s.m.write.Observe(now.Sub(r.accepted).Seconds())
		s.m.durable.Inc()
		s.m.bytes.Add(float64(st.Bytes))
	}
	s.notify(st)
	close(r.done)
}

// retain deletes the oldest snapshots while there are more than keepCount
// or they take more than keepBytes. The newest file is always kept.
func (s *store) retain() {
	for len(s.files) > 1 && ((s.keepCount > 0 && len(s.files) > s.keepCount) || (s.keepBytes > 0 && s.bytes > s.keepBytes)) {
		f := s.files[0]
		if err := s.w.Remove(f.name); err != nil {
			s.m.failures.WithLabelValues("retention").Inc()
			s.log.Error("retention: cannot delete the oldest snapshot", "file", f.name, "err", err)
			return
		}
		s.files = s.files[1:]
		s.bytes -= f.size
		s.log.Debug("retention: deleted", "file", f.name, "kept", len(s.files), "kept_bytes", s.bytes)
	}
}

// newID returns 12 random hex digits: unique across restarts without state.
func newID() string {
	var b [6]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(b[:])
}

// Stored is a snapshot file found in a snapshot directory.
type Stored struct {
	ID    string    `json:"id"`
	Taken time.Time `json:"taken"` // capture time of the frame
	Bytes int64     `json:"bytes"`
	Name  string    `json:"file"`
}

// ListStored returns the snapshots in dir, newest first: the files this
// package wrote there (temporary files of writes in progress are not
// listed).
func ListStored(dir string) ([]Stored, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("snapshot: read directory %s: %w", dir, err)
	}
	var out []Stored
	for _, e := range ents {
		name := e.Name()
		if !snapshotName.MatchString(name) || !e.Type().IsRegular() {
			continue
		}
		t, err := time.Parse("20060102T150405.000000000Z", name[:len("20060102T150405.000000000Z")])
		if err != nil {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue // removed by retention meanwhile
		}
		id := strings.TrimSuffix(name[len("20060102T150405.000000000Z")+1:], ".jpg")
		out = append(out, Stored{ID: id, Taken: t, Bytes: fi.Size(), Name: name})
	}
	slices.SortFunc(out, func(a, b Stored) int { return strings.Compare(b.Name, a.Name) })
	return out, nil
}
