package sdk

import (
	"context"
	"errors"
	"log/slog"
	"time"
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

// Persist keeps a consumer subscribed until ctx is done, for daemons that
// must outlive any producer outage: it calls dial, runs consume with the
// Client dial returned until consume returns, closes the Client, and
// starts over. After a failed dial or an ended subscription it waits
// before dialing again: 100 ms, doubling up to maxWait, and back to
// 100 ms after a dial that succeeded. The first failure of an outage is
// logged at Warn and the retries at Debug, with attrs (say which producer
// and stream). Persist returns nil once ctx is done.
//
// dial should set Options.Reconnect, so that the SDK itself rides out a
// producer restart within one subscription; Persist covers what that
// does not (the first dial, a producer that refused the consumer, an
// error of consume).
func Persist(ctx context.Context, log *slog.Logger, maxWait time.Duration, dial func(context.Context) (*Client, error),
	consume func(context.Context, *Client) error, attrs ...any) {
	const first = 100 * time.Millisecond
	wait, failures := first, 0
	for {
		c, err := dial(ctx)
		if err == nil {
			wait, failures = first, 0
			err = consume(ctx, c)
			_ = c.Close()
		}
		if ctx.Err() != nil {
			return
		}
		level := slog.LevelWarn
		if failures++; failures > 1 {
			level = slog.LevelDebug
		}
		log.Log(ctx, level, "producer subscription failed; retrying",
			append(attrs[:len(attrs):len(attrs)], "retry_in", wait, "failures", failures, "err", err)...)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(2*wait, max(maxWait, first))
	}
}
