package lease

import "errors"

// Sentinel errors. Every error returned by a Table method wraps exactly one
// of these (test with errors.Is) and its message names the consumer, frame
// or lease involved, e.g. "lease: release 7 for consumer 3: lease: unknown lease".
var (
	// ErrUnknownConsumer: the consumer was never added or has been removed.
	ErrUnknownConsumer = errors.New("lease: unknown consumer")
	// ErrDuplicateConsumer: AddConsumer for a consumer that is already present.
	ErrDuplicateConsumer = errors.New("lease: duplicate consumer")
	// ErrInvalidLimits: AddConsumer with MaxInFlight < 1 or MaxHold < 0.
	ErrInvalidLimits = errors.New("lease: invalid limits")
	// ErrUnknownFrame: the frame was never added or has already been freed.
	ErrUnknownFrame = errors.New("lease: unknown frame")
	// ErrDuplicateFrame: AddFrame for a frame that is still live.
	ErrDuplicateFrame = errors.New("lease: duplicate frame")
	// ErrBudget: Grant to a consumer that already has MaxInFlight live leases.
	ErrBudget = errors.New("lease: consumer at in-flight budget")
	// ErrUnknownLease: Release of a lease id that was never granted to this
	// consumer or was already released (double release).
	ErrUnknownLease = errors.New("lease: unknown lease")
	// ErrNotHeld: Unhold of a live frame that has no producer hold left.
	ErrNotHeld = errors.New("lease: frame has no producer hold")
)
