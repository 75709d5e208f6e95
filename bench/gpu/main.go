// Command gpu measures the cuda surface kind on a machine with an NVIDIA
// GPU: frames rendered by a GPU source into cuda surfaces and delivered to
// consumer processes that verify every frame on the GPU (docs/bench/gpu.md).
//
//	gpu run [flags]        the whole benchmark; writes a JSON report (-out) and prints a table
//	gpu producer [flags]   a producer with the GPU source (a child of run)
//	gpu consumer [flags]   a consumer (a child of run): -mode verify, hold, survive or dmabuf
//	gpu facts              the devices the driver reports
//
// The program uses no cgo and no GStreamer: it loads libcuda.so.1 at run
// time, so it is cross-built here (CGO_ENABLED=0) and run on the GPU
// machine (bench/gpu/run.sh). $FRAMEHUB_LIBCUDA points it at another
// library (the tests' stand-in).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/framehub/framehub/internal/cuda"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "run":
		err = runMain(os.Args[2:])
	case "producer":
		err = producerMain(os.Args[2:])
	case "consumer":
		err = consumerMain(os.Args[2:])
	case "facts":
		err = factsMain()
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gpu:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: gpu run|producer|consumer|facts [flags] (gpu <command> -help lists the flags)")
	os.Exit(2)
}

// gpuFlags are the flags every command shares.
type gpuFlags struct {
	width, height int
	sched         string
	kernels       string
}

func (g *gpuFlags) register(fs *flag.FlagSet) {
	fs.IntVar(&g.width, "width", 3840, "frame width in pixels")
	fs.IntVar(&g.height, "height", 2160, "frame height in pixels")
	fs.StringVar(&g.sched, "sched", "blocking", "how host threads wait for the GPU: auto, spin, yield, blocking")
	fs.StringVar(&g.kernels, "kernels", "", "PTX file to load instead of the embedded kernels (one rebuilt with nvcc on the GPU machine)")
}

// open loads the driver, sets the scheduling and retains device 0's
// primary context (or the device with uuid, when given).
func (g *gpuFlags) open(uuid []byte) (*cuda.Driver, *cuda.Context, error) {
	sched, err := cuda.ParseSched(g.sched)
	if err != nil {
		return nil, nil, err
	}
	d, err := cuda.Load(cuda.Options{})
	if err != nil {
		return nil, nil, err
	}
	var dev cuda.Device
	if uuid != nil {
		u, err := cuda.ParseUUID(uuid)
		if err != nil {
			return nil, nil, err
		}
		dev, err = d.DeviceByUUID(u)
	} else {
		dev, err = d.Device(0)
	}
	if err != nil {
		return nil, nil, err
	}
	if err := d.SetSched(dev, sched); err != nil {
		return nil, nil, err
	}
	ctx, err := d.Retain(dev)
	if err != nil {
		return nil, nil, err
	}
	return d, ctx, nil
}

// kernelImage reads -kernels, or returns nil for the embedded PTX.
func (g *gpuFlags) kernelImage() ([]byte, error) {
	if g.kernels == "" {
		return nil, nil
	}
	return os.ReadFile(g.kernels)
}

func factsMain() error {
	d, err := cuda.Load(cuda.Options{})
	if err != nil {
		return err
	}
	v, err := d.Version()
	if err != nil {
		return err
	}
	devs, err := d.Devices()
	if err != nil {
		return err
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		Library string
		Version int
		Devices []cuda.Device
	}{d.Path(), v, devs})
}
