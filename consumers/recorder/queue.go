package recorder

import (
	"sync"
)

// item is what travels from the receiver to the writer: an access unit, or
// a command.
type item struct {
	au  *au
	cmd command
	// name is the file name (without directory and extension) of the
	// segment that cmdCut starts: events name their file when triggered.
	// suffix is added to the names of the segments that follow it, until
	// cmdClose.
	name, suffix string
}

type command uint8

const (
	cmdNone  command = iota
	cmdCut           // the next access unit (a keyframe) starts a new segment
	cmdClose         // finalise the current segment (an event's end)
)

// queue is the bounded queue between the receiver, which must never wait
// (it copies access units and releases their leases at once), and the
// writer, which may stall on storage. It is bounded in bytes. When an
// access unit does not fit, the queue drops it and every access unit after
// it until a keyframe fits: a GOP is never written with a hole in it (the
// part already queued is a prefix in decode order, which decodes). Each GOP
// that loses frames counts once.
type queue struct {
	max int64

	mu       sync.Mutex
	items    []item
	head     int
	bytes    int64
	frames   int
	closed   bool
	dropping bool          // dropping until a keyframe fits
	wake     chan struct{} // capacity 1: the writer has something to do
}

func newQueue(maxBytes int64) *queue {
	return &queue{max: maxBytes, wake: make(chan struct{}, 1)}
}

// push adds an access unit, or drops it (see queue); it never blocks. It
// reports whether the access unit was queued and, when it was not, whether
// it was the first loss of a GOP.
func (q *queue) push(a *au) (queued, gopLost bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return false, false
	}
	fits := q.bytes+int64(a.size()) <= q.max
	if q.dropping && (!a.key || !fits) {
		return false, a.key // a keyframe that does not fit: another whole GOP lost
	}
	if !fits {
		q.dropping = true
		return false, true
	}
	q.dropping = false
	q.appendLocked(item{au: a})
	q.bytes += int64(a.size())
	q.frames++
	return true, false
}

// command queues a command; commands are never dropped.
func (q *queue) command(cmd command, name, suffix string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.closed {
		q.appendLocked(item{cmd: cmd, name: name, suffix: suffix})
	}
}

func (q *queue) appendLocked(it item) {
	if q.head > 0 && q.head == len(q.items) {
		q.items, q.head = q.items[:0], 0
	}
	q.items = append(q.items, it)
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// pop takes the oldest item. ok is false when the queue is empty; done is
// true when it is also closed (the writer's end).
func (q *queue) pop() (it item, ok, done bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.head == len(q.items) {
		return item{}, false, q.closed
	}
	it = q.items[q.head]
	q.items[q.head] = item{}
	q.head++
	if it.au != nil {
		q.bytes -= int64(it.au.size())
		q.frames--
	}
	// Reclaim the slice's front once it is mostly consumed.
	if q.head > 1024 && q.head*2 > len(q.items) {
		n := copy(q.items, q.items[q.head:])
		q.items, q.head = q.items[:n], 0
	}
	return it, true, false
}

// close ends the queue: the writer drains what is queued, then stops.
func (q *queue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// depth returns the bytes and access units queued, and the receipt time of
// the oldest queued access unit (0 when none).
func (q *queue) depth() (bytes int64, frames int, oldest int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i := q.head; i < len(q.items); i++ {
		if a := q.items[i].au; a != nil {
			oldest = a.arrived
			break
		}
	}
	return q.bytes, q.frames, oldest
}
