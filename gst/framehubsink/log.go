package main

/*
#include <stdlib.h>
#include "element.h"
*/
import "C"

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"unsafe"
)

// GStreamer debug levels (GstDebugLevel).
const (
	gstError   = 1
	gstWarning = 2
	gstInfo    = 4
	gstDebug   = 5
)

// gstHandler writes the producer's logs into GStreamer's debug log, in the
// framehubsink category (GST_DEBUG=framehubsink:4 shows them down to
// info), where an application's other GStreamer logs are.
type gstHandler struct {
	attrs string // " key=value" of WithAttrs, prefixed with the groups
	group string // "a.b." of WithGroup
}

func gstLevel(l slog.Level) C.int {
	switch {
	case l >= slog.LevelError:
		return gstError
	case l >= slog.LevelWarn:
		return gstWarning
	case l >= slog.LevelInfo:
		return gstInfo
	}
	return gstDebug
}

func (h gstHandler) Enabled(_ context.Context, l slog.Level) bool {
	return C.fhs_log_enabled(gstLevel(l)) != 0
}

func (h gstHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	b.WriteString(h.attrs)
	r.Attrs(func(a slog.Attr) bool {
		writeAttr(&b, h.group, a)
		return true
	})
	msg := C.CString(b.String())
	C.fhs_log(gstLevel(r.Level), msg)
	C.free(unsafe.Pointer(msg))
	return nil
}

func writeAttr(b *strings.Builder, prefix string, a slog.Attr) {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		for _, g := range v.Group() {
			writeAttr(b, prefix+a.Key+".", g)
		}
		return
	}
	fmt.Fprintf(b, " %s%s=%q", prefix, a.Key, v.String())
}

func (h gstHandler) WithAttrs(as []slog.Attr) slog.Handler {
	var b strings.Builder
	b.WriteString(h.attrs)
	for _, a := range as {
		writeAttr(&b, h.group, a)
	}
	return gstHandler{attrs: b.String(), group: h.group}
}

func (h gstHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return gstHandler{attrs: h.attrs, group: h.group + name + "."}
}
