# framehub — `make` lists the targets. `make demo` and `make test` install what is missing first.
SHELL := /bin/bash
GO ?= go
BIN := $(CURDIR)/bin
# make demo CAMERAS=n: the demo with n test cameras in one group.
CAMERAS ?= 1
# The GStreamer plugins framehubsrc and framehubsink (GST_PLUGIN_PATH=build/gst).
GST_DIR := $(CURDIR)/build/gst
# Debian packages the build, tests and demo need. Installed by `make deps` when missing.
APT_PACKAGES := ca-certificates gcc pkg-config python3 python3-msgpack \
	libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev gstreamer1.0-plugins-base gstreamer1.0-plugins-good \
	gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-tools \
	gstreamer1.0-x gstreamer1.0-plugins-base-apps chromium fonts-liberation
export GOFLAGS := -buildvcs=false
# make soak DURATION=2h: how long the soak injects faults.
DURATION ?= 30m
# Fuzz targets of the inputs peers and web clients control (the admin
# endpoints, metric labels), each fuzzed for ADMIN_FUZZTIME by make test
# beyond its seed corpus (which every go test runs). A count of executions,
# not a duration: Go 1.26's fuzzing coordinator can report its own
# -fuzztime deadline as a failure ("context deadline exceeded", no failing
# input; golang/go#75804, fixed in Go 1.27). 40,000 executions take 2-8 s
# here.
ADMIN_FUZZ := FuzzGuard:./internal/admin FuzzAdminAPI:./consumers/snapshot FuzzAdminAPI:./consumers/recorder FuzzWebAPI:./consumers/web \
	FuzzAdminAPI:./internal/supervisor FuzzPeerLabel:./producer
ADMIN_FUZZTIME ?= 40000x

.DEFAULT_GOAL := help
.PHONY: bench-atrest bench-floor help deps build gst test bench bench-peers bench-gpu demo chaos soak fuzz lint clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

deps: ## install missing Debian packages (apt-get, with sudo when not root) and Go modules
	@scripts/deps.sh $(APT_PACKAGES)
	@$(GO) mod download

build: deps gst ## build every binary into ./bin, and the GStreamer plugins into build/gst
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./cmd/... ./examples/...

gst: deps ## build the GStreamer plugins framehubsrc and framehubsink into build/gst (use with GST_PLUGIN_PATH=build/gst)
	scripts/build-gst.sh $(GST_DIR)

test: deps ## run every test: unit, fuzz seed corpora, multi-process and end-to-end
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	CGO_ENABLED=0 $(GO) build ./fdpass/... ./ipc/... ./lease/... ./sdk/... ./examples/consumer-go ./examples/plugin-motion ./consumers/streamer/... ./cmd/framehub-streamer ./consumers/web/... ./cmd/framehub-web
	CGO_ENABLED=0 $(GO) build ./examples/consumer-cuda ./bench/gpu
	$(GO) build ./examples/...
	# go test ./... below also builds every Go example from a copy outside the module (examples/examples_test.go).
	# Jetson NVMM adoption (build tag jetson): compiled and unit-tested here with a synthetic NVMM memory.
	$(GO) vet -tags jetson ./internal/gst/ ./producer/media/
	$(GO) test -tags jetson -count=1 -run 'NVMM|TestDescription' ./internal/gst/ ./producer/media/
	# The GStreamer plugins: test/gstelem runs them with gst-launch-1.0.
	scripts/build-gst.sh $(GST_DIR)
	FRAMEHUB_GST_PLUGINS=$(GST_DIR) $(GO) test -race -count=1 -timeout 20m ./...
	@for t in $(ADMIN_FUZZ); do \
		echo "$(GO) test -run='^$$' -fuzz='^$${t%%:*}$$' -fuzztime=$(ADMIN_FUZZTIME) $${t#*:}"; \
		$(GO) test -run='^$$' -fuzz="^$${t%%:*}$$" -fuzztime=$(ADMIN_FUZZTIME) -fuzzminimizetime=1s "$${t#*:}" || exit 1; \
	done
	FRAMEHUB_CHAOS=1 $(GO) test -count=1 -timeout 10m -run TestChaos ./test/chaos
	$(GO) build -o $(BIN)/ ./cmd/... ./examples/...
	scripts/demo_check.sh

bench: build ## run the benchmarks; reports in docs/bench/ (see docs/BENCHMARKS.md; ~17 minutes)
	$(GO) build -o $(BIN)/ ./bench/consumer
	$(GO) run ./bench/transport -bin $(BIN)
	$(GO) run ./bench/snapshot
	bench/atrest/run.sh -seconds 15 -repeats 5 $(BIN)

bench-atrest: build ## the producer alone (no consumer, no encoder) against videotestsrc ! shmsink, 5 alternating runs (~5 minutes; docs/bench/atrest.md)
	bench/atrest/run.sh -seconds 15 -repeats 5 $(BIN)

demo: build ## the whole group under the supervisor: test camera, x264enc, memfd surfaces, recorder, RTSP, snapshots (CAMERAS=n cameras; DEMO_SECONDS=n to stop by itself)
	@BIN=$(BIN) CAMERAS=$(CAMERAS) scripts/demo.sh

soak: deps ## the long chaos run: DURATION (default 30m) of random faults; report and charts in docs/SOAK.md, docs/soak/
	FRAMEHUB_CHAOS=1 FRAMEHUB_CHAOS_DURATION=$(DURATION) FRAMEHUB_SOAK_REPORT=$(CURDIR)/docs/SOAK.md \
		$(GO) test -count=1 -timeout 24h -v -run TestChaos ./test/chaos

chaos: deps ## the chaos suite alone: random faults on the supervised group (FRAMEHUB_CHAOS_DURATION, default 60s; FRAMEHUB_CHAOS_SEED)
	FRAMEHUB_CHAOS=1 $(GO) test -count=1 -timeout 2h -v -run TestChaos ./test/chaos

bench-gpu: ## cross-build bench/gpu's bundle into ./bin/gpu-bench: copy it to a machine with an NVIDIA GPU and run its run.sh there (docs/bench/gpu.md)
	@mkdir -p $(BIN)/gpu-bench
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -ldflags='-s -w' -o $(BIN)/gpu-bench/gpu ./bench/gpu
	cp internal/gpuframe/kernels.h internal/gpuframe/kernels.cu internal/gpuframe/kernels.ptx bench/gpu/probe/probe.c bench/gpu/run.sh $(BIN)/gpu-bench/

bench-peers: build ## framehub (Go consumers and framehubsrc) vs GStreamer shmsink/shmsrc (and unixfd when present), N = 1, 3, 6, hung consumer (~45 minutes)
	$(GO) build -o $(BIN)/ ./bench/consumer
	$(GO) run ./bench/peers -bin $(BIN)

bench-floor: build ## one more consumer: framehub (Go and C consumers) and shmsink against the machine's floor in C and Go, N = 0, 1, 3 (~22 minutes; docs/bench/peers-floor.md)
	$(GO) build -o $(BIN)/ ./bench/consumer
	$(GO) run ./bench/peers -bin $(BIN) -systems framehub-notouch,framehub-c,shmsink -runs-only -floor -consumers 0,1,3 -repeats 3 -window 20s \
		-out docs/bench/peers-floor.md -results bench/peers/results-floor.json

fuzz: ## fuzz the wire decoder for FUZZTIME (default 60s)
	$(GO) test -run='^$$' -fuzz=FuzzDecode -fuzztime=$${FUZZTIME:-60s} ./ipc

lint: ## gofmt and go vet
	@gofmt -l . | tee /dev/stderr | (! read)
	$(GO) vet ./...

clean: ## remove built binaries and plugins
	rm -rf $(BIN) $(GST_DIR)
