package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/framehub/framehub/consumers/snapshot"
)

const snapshotUsage = `Usage: framehubctl snapshot [-o file] [-addr 127.0.0.1:7704] [-quality N] [-scale W | -width W -height H]
                            [-after capture-mono-ns] [-encoder go|gst] [-wait] [-json] [-token-file FILE]

Asks framehub-snapshot for a JPEG of the first frame captured at or after now (or -after, a
CLOCK_MONOTONIC time in ns). The daemon also writes the snapshot to its directory, behind a
queue: the answer comes as soon as the JPEG exists, before that file is durable; -wait waits
until it is.

Flags:
`

func runSnapshot(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("framehubctl snapshot", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), snapshotUsage)
		fs.PrintDefaults()
	}
	var req snapshot.Request
	out := fs.String("o", "", `write the JPEG to this file ("-": standard output); without -o only the status is printed`)
	addr := fs.String("addr", snapshot.DefaultAdminAddr, "framehub-snapshot's admin address: host:port, or unix:/path")
	fs.IntVar(&req.Quality, "quality", 0, "JPEG quality 1..100 (default: the daemon's -quality)")
	fs.IntVar(&req.Scale, "scale", 0, "output width; the height keeps the aspect ratio (default: full frame)")
	fs.IntVar(&req.Width, "width", 0, "output width, with -height")
	fs.IntVar(&req.Height, "height", 0, "output height, with -width")
	fs.Int64Var(&req.After, "after", 0, "CLOCK_MONOTONIC ns: snapshot the first frame captured at or after it (default: now)")
	fs.StringVar(&req.Encoder, "encoder", "", "go or gst (default: the daemon's -encoder)")
	wait := fs.Bool("wait", false, "wait until the daemon's file is durable (fsynced) and print its final status")
	asJSON := fs.Bool("json", false, "print the status as JSON")
	timeout := fs.Duration("timeout", 30*time.Second, "give up after this long")
	tokenFile := tokenFlag(fs)
	cam := addCameraFlags(fs, "snapshot")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	if req.Scale != 0 && (req.Width != 0 || req.Height != 0) {
		return usageError{errors.New("give -scale or -width and -height, not both")}
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	a, err := cam.addr(ctx, "snapshot", *addr, *tokenFile)
	if err != nil {
		return err
	}
	c := snapshot.NewClient(a)
	defer c.Close()
	tok, tokErr := loadToken(*tokenFile)
	c.SetToken(tok)
	st, data, err := c.Take(ctx, req, *out != "")
	var ae *snapshot.APIError
	if errors.As(err, &ae) && ae.Code == http.StatusUnauthorized && tokErr != nil {
		return fmt.Errorf("%w\nframehubctl sent no token: %v (run framehubctl as the daemon's user or root, or give -token-file)", err, tokErr)
	}
	if err != nil {
		return err
	}
	switch *out {
	case "":
	case "-":
		if _, err := stdout.Write(data); err != nil {
			return fmt.Errorf("write the JPEG to standard output: %w", err)
		}
		stdout = stderr // the status must not corrupt the image
	default:
		if err := writeFile(*out, data); err != nil {
			return err
		}
	}
	if *wait {
		id := st.ID
		for !st.Durable && st.State != snapshot.StateFailed {
			if st, err = c.Status(ctx, id, time.Until(deadline(ctx))); err != nil {
				return fmt.Errorf("wait for snapshot %s to be durable: %w", id, err)
			}
		}
	}
	if *asJSON {
		if err := writeJSON(stdout, st); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(stdout, "snapshot %s: %dx%d, %d bytes, captured %s (mono %d), %s encode %.1f ms\n",
			st.ID, st.Width, st.Height, st.Bytes, st.CaptureTime.Format(time.RFC3339Nano), st.CaptureMonoNS, st.Encoder, st.EncodeSeconds*1000)
		if *out != "" && *out != "-" {
			fmt.Fprintf(stdout, "wrote %s\n", *out)
		}
		fmt.Fprintf(stdout, "daemon's copy: %s (%s)\n", st.Path, st.State)
	}
	if st.State == snapshot.StateFailed {
		return fmt.Errorf("the daemon could not write snapshot %s: %s", st.ID, st.Error)
	}
	return nil
}

// deadline returns ctx's deadline, capped to the longest status wait.
func deadline(ctx context.Context) time.Time {
	d, ok := ctx.Deadline()
	if limit := time.Now().Add(60 * time.Second); !ok || d.After(limit) {
		return limit
	}
	return d
}

// writeFile writes data to path through a temporary file and a rename, so
// that path never holds half an image.
func writeFile(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
