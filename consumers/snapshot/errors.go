package snapshot

import "errors"

// Errors returned by Service.Take and the admin API; they are wrapped with
// the details (which value, which limit).
var (
	// ErrBusy means the write queue is full: the storage is slower than the
	// snapshots asked for. Snapshots already accepted are kept; this one is
	// refused (HTTP 503).
	ErrBusy = errors.New("storage busy")
	// ErrNotConnected means the daemon is not subscribed to the producer
	// (not started yet, or restarting) (HTTP 503).
	ErrNotConnected = errors.New("not connected to the producer")
	// ErrNoFrame means no frame captured at or after the requested time
	// arrived within the frame timeout (HTTP 504).
	ErrNoFrame = errors.New("no frame from the producer")
	// ErrInvalid is a request the daemon cannot honour: bad quality, size,
	// time or encoder (HTTP 400).
	ErrInvalid = errors.New("invalid snapshot request")
	// ErrUnknown is a status request for an id the daemon does not know
	// (never issued, or forgotten: only the latest statuses are kept) (HTTP 404).
	ErrUnknown = errors.New("unknown snapshot id")
	// ErrStopping means the daemon is shutting down (HTTP 503).
	ErrStopping = errors.New("snapshot daemon is stopping")
)
