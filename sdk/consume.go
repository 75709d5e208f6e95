package sdk

import (
	"context"
	"errors"
)

// Consume is a consumer's receive loop: it calls fn with every frame Next
// returns, until ctx is done (then it returns nil) or fn returns an error
// (which it returns). fn owns each frame: it must Release it, at once or
// later. An eviction (ErrEvicted, logged by the SDK) does not end the
// loop: with Options.Reconnect the next Next dials again, without it Next
// reports the disconnect. Any other error of Next ends the loop and is
// returned: the connection ended and Reconnect is off, the producer
// refused a reconnect for good (a *RejectError), or the Client was closed
// (ErrClosed).
func (c *Client) Consume(ctx context.Context, fn func(f *Frame) error) error {
	for {
		f, err := c.Next(ctx)
		switch {
		case err == nil:
			if err := fn(f); err != nil {
				return err
			}
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, ErrEvicted):
		default:
			return err
		}
	}
}
