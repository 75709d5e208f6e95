package snapshot

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Event is a notification: a snapshot became durable ("snapshot.durable")
// or its write failed for good ("snapshot.failed"). It is POSTed as JSON to
// the webhook and sent as one JSON datagram to the event socket.
type Event struct {
	Event string `json:"event"`
	Status
}

// notifyQueue bounds the events waiting for the webhook and event socket: a
// dead webhook must not grow memory without end.
const notifyQueue = 256

// notifyTimeout bounds one webhook POST or datagram send.
const notifyTimeout = 5 * time.Second

// notifier reports finished snapshots: a log line always, plus the webhook
// and the Unix datagram socket when configured, from a goroutine of its own
// so a slow receiver never delays the writer.
type notifier struct {
	log         *slog.Logger
	m           *metrics
	webhook     string
	eventSocket string
	client      *http.Client
	events      chan Event
}

func newNotifier(log *slog.Logger, m *metrics, webhook, eventSocket string) *notifier {
	return &notifier{
		log: log, m: m, webhook: webhook, eventSocket: eventSocket,
		client: &http.Client{Timeout: notifyTimeout},
		events: make(chan Event, notifyQueue),
	}
}

// notify is called by the writer when a snapshot is finished.
func (n *notifier) notify(st Status) {
	ev := Event{Event: "snapshot.durable", Status: st}
	if st.Durable {
		n.log.Info("snapshot durable", "id", st.ID, "path", st.Path, "bytes", st.Bytes, "write_seconds", st.WriteSeconds)
	} else {
		ev.Event = "snapshot.failed"
		n.log.Error("snapshot failed", "id", st.ID, "path", st.Path, "attempts", st.Attempts, "err", st.Error)
	}
	if n.webhook == "" && n.eventSocket == "" {
		return
	}
	select {
	case n.events <- ev:
	default:
		n.m.failures.WithLabelValues("notify_dropped").Inc()
		n.log.Warn("notification queue full; event not sent", "id", st.ID, "event", ev.Event)
	}
}

// run sends queued events until ctx is done, then those still queued.
func (n *notifier) run(ctx context.Context) {
	for {
		select {
		case ev := <-n.events:
			n.send(ev)
		case <-ctx.Done():
			for {
				select {
				case ev := <-n.events:
					n.send(ev)
				default:
					return
				}
			}
		}
	}
}

func (n *notifier) send(ev Event) {
	body, err := json.Marshal(ev)
	if err != nil {
		n.log.Error("encode notification", "id", ev.ID, "err", err)
		return
	}
	if n.webhook != "" {
		if err := n.post(body); err != nil {
			n.m.failures.WithLabelValues("webhook").Inc()
			n.log.Warn("webhook notification failed", "url", n.webhook, "id", ev.ID, "err", err)
		}
	}
	if n.eventSocket != "" {
		if err := n.datagram(body); err != nil {
			n.m.failures.WithLabelValues("event_socket").Inc()
			n.log.Warn("event socket notification failed", "socket", n.eventSocket, "id", ev.ID, "err", err)
		}
	}
}

func (n *notifier) post(body []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), notifyTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.webhook, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := n.client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook answered %s", resp.Status)
	}
	return nil
}

// datagram sends body as one datagram. A socket per event keeps no state
// to repair when the receiver restarts; events are rare.
func (n *notifier) datagram(body []byte) error {
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: n.eventSocket, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetWriteDeadline(time.Now().Add(notifyTimeout))
	if _, err := c.Write(body); err != nil {
		return fmt.Errorf("send %d-byte event: %w", len(body), err)
	}
	return nil
}
