package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"
)

func runLogs(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("logs", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:7700", "framehub-supervisor admin address (host:port or unix:/path)")
	n := fs.Int("n", 100, "lines to show")
	follow := fs.Bool("f", false, "keep printing new lines")
	asJSON := fs.Bool("json", false, `print JSON Lines: {"process": name, "line": text} for each line`)
	tokenFile := tokenFlag(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: framehubctl logs [-addr 127.0.0.1:7700] [-n lines] [-f] [-json] [-token-file FILE] <process>")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return usageErr(err)
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return usageError{fmt.Errorf("name one process (see framehubctl status)")}
	}
	name := fs.Arg(0)
	sup := newDaemonAPI("framehub-supervisor", *addr, *tokenFile)
	fetch := func(lines int) ([]string, error) {
		body, err := sup.get(ctx, "/logs?name="+url.QueryEscape(name)+fmt.Sprintf("&lines=%d", lines))
		if err != nil {
			return nil, err
		}
		s := strings.TrimSuffix(string(body), "\n")
		if s == "" {
			return nil, nil
		}
		return strings.Split(s, "\n"), nil
	}
	enc := json.NewEncoder(stdout)
	emit := func(l string) {
		if *asJSON {
			_ = enc.Encode(struct {
				Process string `json:"process"`
				Line    string `json:"line"`
			}{name, l})
			return
		}
		fmt.Fprintln(stdout, l)
	}
	lines, err := fetch(*n)
	if err != nil {
		return err
	}
	for _, l := range lines {
		emit(l)
	}
	for *follow {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
		// The ring holds the last lines: print what follows the last one seen.
		now, err := fetch(2000)
		if err != nil {
			return err
		}
		start := 0
		if len(lines) > 0 {
			last := lines[len(lines)-1]
			for i := len(now) - 1; i >= 0; i-- {
				if now[i] == last {
					start = i + 1
					break
				}
			}
		}
		for _, l := range now[start:] {
			emit(l)
		}
		if len(now) > 0 {
			lines = now
		}
	}
	return nil
}
