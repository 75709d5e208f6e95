package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

func runRecord(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "event" {
		fmt.Fprintln(stderr, "Usage: framehubctl record event [-addr 127.0.0.1:7702] [-pre 5s] [-post 10s] [-label text]")
		return usageError{errors.New(`the only record command is "event"`)}
	}
	fs := flag.NewFlagSet("record event", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:7702", "framehub-recorder admin address (host:port or unix:/path)")
	pre := fs.Duration("pre", 0, "seconds before the event to keep (0: the recorder's default)")
	post := fs.Duration("post", 0, "seconds after the event to record (0: the recorder's default)")
	lbl := fs.String("label", "", "a label stored with the event")
	if err := fs.Parse(args[1:]); err != nil {
		return usageErr(err)
	}
	body := map[string]any{}
	if *pre > 0 {
		body["pre_seconds"] = pre.Seconds()
	}
	if *post > 0 {
		body["post_seconds"] = post.Seconds()
	}
	if *lbl != "" {
		body["label"] = *lbl
	}
	b, _ := json.Marshal(body)
	c, base := httpClient(*addr)
	c.Timeout = 10 * time.Second
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/record/event", bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) {
			err = op.Err
		}
		return fmt.Errorf("cannot reach framehub-recorder at %s: %w (is it running?)", *addr, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("framehub-recorder at %s: %s: %s", *addr, resp.Status, strings.TrimSpace(string(out)))
	}
	fmt.Fprintln(stdout, strings.TrimSpace(string(out)))
	return nil
}
