package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

func runRecord(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "event" {
		fmt.Fprintln(stderr, "Usage: framehubctl record event [-addr 127.0.0.1:7702] [-pre 5s] [-post 10s] [-label text] [-json] [-token-file FILE]")
		return usageError{errors.New(`the only record command is "event"`)}
	}
	fs := flag.NewFlagSet("record event", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:7702", "framehub-recorder admin address (host:port or unix:/path)")
	pre := fs.Duration("pre", 0, "seconds before the event to keep (0: the recorder's default)")
	post := fs.Duration("post", 0, "seconds after the event to record (0: the recorder's default)")
	lbl := fs.String("label", "", "a label stored with the event")
	asJSON := fs.Bool("json", false, `print the recorder's answer as JSON ({"file", "start", "pre_seconds", "post_seconds", "extended"})`)
	tokenFile := tokenFlag(fs)
	cam := addCameraFlags(fs, "recorder")
	if err := fs.Parse(args[1:]); err != nil {
		return usageErr(err)
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
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
	a, err := cam.addr(ctx, "recorder", *addr, *tokenFile)
	if err != nil {
		return err
	}
	rec := newDaemonAPI("framehub-recorder", a, *tokenFile)
	rec.hc.Timeout = 10 * time.Second
	out, err := rec.do(ctx, http.MethodPost, "/record/event", bytes.NewReader(b), "application/json")
	if err != nil {
		return err
	}
	var ev struct {
		File        string    `json:"file"`
		Start       time.Time `json:"start"`
		PreSeconds  float64   `json:"pre_seconds"`
		PostSeconds float64   `json:"post_seconds"`
		Extended    bool      `json:"extended"`
	}
	if err := json.Unmarshal(out, &ev); err != nil {
		return fmt.Errorf("framehub-recorder at %s: /record/event answered %q: %w", *addr, strings.TrimSpace(string(out)), err)
	}
	if *asJSON {
		return writeJSON(stdout, ev)
	}
	what := "event recording"
	if ev.Extended {
		what = "event recording extended"
	}
	fmt.Fprintf(stdout, "%s: %s, from %s (%.1f s before the event, %.1f s after)\n", what, ev.File,
		ev.Start.Format(time.RFC3339Nano), ev.PreSeconds, ev.PostSeconds)
	return nil
}
