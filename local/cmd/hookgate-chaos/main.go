// Command hookgate-chaos runs the fault-injection load suite (make chaos): its own emulators and
// stack, a load from many connections, the faults chosen, then the checks; it prints one table
// and exits 1 when anything was lost, doubled or left stuck.
//
//	hookgate-chaos -bin .build/amd64 -messages 10000 -connections 32 -faults all
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/hookgate/hookgate/local/chaos"
	"github.com/hookgate/hookgate/local/emulator"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := run(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "hookgate-chaos:", err)
		os.Exit(2)
	}
	fmt.Print(rep.Table())
	if rep.Failed() {
		os.Exit(1)
	}
}

func run(ctx context.Context) (*chaos.Report, error) {
	var c chaos.Config
	var faults string
	var verbose bool
	flag.StringVar(&c.BinDir, "bin", "", "folder of the host bootstraps (<LogicalId>/bootstrap), as make bootstraps builds them")
	flag.IntVar(&c.Messages, "messages", 10000, "messages to post")
	flag.IntVar(&c.Connections, "connections", 32, "connections posting at once")
	flag.StringVar(&faults, "faults", "all", "all, none, or a comma-separated list of: "+fmt.Sprint(chaos.AllFaults))
	flag.DurationVar(&c.Visibility, "visibility", 0, "replace every queue's visibility timeout (0: the template's)")
	flag.DurationVar(&c.StallAfter, "stall-after", 0, "messages in flight and held by no invocation this long are a stall (0: the consumer's function timeout)")
	flag.DurationVar(&c.DeliveryTimeout, "delivery-timeout", 0, "the stack's DeliveryTimeoutSeconds (0: the template's)")
	flag.DurationVar(&c.ConvergeLimit, "converge-limit", 30*time.Minute, "how long to wait for quiet after the load")
	flag.IntVar(&c.Concurrency, "concurrency", 3, "bootstrap processes (and pollers) per function")
	flag.IntVar(&c.DeliveryConcurrency, "delivery-concurrency", 0, "the delivery function's processes and pollers (0: 3 × concurrency)")
	flag.BoolVar(&verbose, "v", false, "print the bootstraps' output")
	logFile := flag.String("log", "", "write local mode's own log (event source mappings, pollers) as JSON lines to this file")
	flag.Parse()
	f, err := chaos.ParseFaults(faults)
	if err != nil {
		return nil, err
	}
	c.Faults = f
	wd, _ := os.Getwd()
	if c.Root, err = emulator.FindRoot(wd); err != nil {
		return nil, err
	}
	if c.BinDir == "" {
		return nil, fmt.Errorf("-bin is required (make chaos passes it)")
	}
	if c.BinDir, err = filepath.Abs(c.BinDir); err != nil {
		return nil, err
	}
	c.Out = os.Stderr
	if *logFile != "" {
		lf, err := os.Create(*logFile)
		if err != nil {
			return nil, err
		}
		defer lf.Close()
		c.Logger = slog.New(slog.NewJSONHandler(lf, nil))
	}
	if verbose {
		c.FunctionLog = os.Stderr
	}
	return chaos.Run(ctx, c)
}
