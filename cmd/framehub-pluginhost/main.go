// Command framehub-pluginhost runs third-party framehub consumers written as
// go-plugin plugins (package sdk/plugin): it launches each plugin, gives it
// its settings and the producer's socket, re-logs its stderr under its
// name, checks its health every few seconds and restarts it with backoff
// when it crashes or hangs. Frames never pass through the host: each plugin
// subscribes to the producer itself.
package main

import "github.com/framehub/framehub/internal/daemonrun"

const usage = "Usage: framehub-pluginhost [-config FILE] [-plugin NAME=PATH]... [flags]\n\n" +
	"Runs framehub consumer plugins (see docs/SDK.md, \"Plugins\") and keeps them running.\n\nFlags:\n"

func main() {
	var o options
	daemonrun.Main("framehub-pluginhost", usage, &o)
}
