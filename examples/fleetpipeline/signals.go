// The job's stop on SIGINT and SIGTERM: the first stops it gracefully, a second exits at
// once.

package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// stopOnSignal returns a context that ends at the first SIGINT or SIGTERM: the job stops
// gracefully, finishing the batch in flight (for up to the pipeline's shutdown grace, 30 s)
// and closing its outputs. A second signal exits at once, with 128 + its number as a shell
// reports a command a signal ended (130 for Ctrl-C), after atExit: signal.NotifyContext kept
// catching the signals until the job returned, so a stop that waited on a hung output
// could only be killed. stop restores the signals' default behaviour.
func stopOnSignal(stderr io.Writer, atExit func()) (ctx context.Context, stop func()) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithCancel(context.Background())
	quit := make(chan struct{})
	go func() {
		select {
		case <-sigs:
		case <-quit:
			return
		}
		fmt.Fprintln(stderr, "fleetpipeline: stopping: finishing the batch in flight and closing the outputs; interrupt again to exit at once")
		cancel()
		var sig os.Signal
		select {
		case sig = <-sigs:
		case <-quit:
			return
		}
		fmt.Fprintln(stderr, "fleetpipeline: interrupt again: exiting at once; what was not committed is read again by the next run")
		atExit()
		code := 1
		if s, ok := sig.(syscall.Signal); ok {
			code = 128 + int(s)
		}
		os.Exit(code)
	}()
	return ctx, func() {
		signal.Stop(sigs)
		close(quit)
		cancel()
	}
}
