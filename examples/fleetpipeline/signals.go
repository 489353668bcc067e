// The job's stop on SIGINT and SIGTERM: the first stops it gracefully, within
// -shutdown-timeout; a second exits at once.

package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// stopOnSignal returns a context that ends at the first SIGINT or SIGTERM: the job stops
// gracefully, finishing the batch in flight and closing its outputs, within bound
// (-shutdown-timeout, the pipeline's share: config.pipelineStop). Past bound it exits 1 after
// atExit, saying that what it had not written and committed is read again by the next run: a
// stage that outlived its share (a source's stop, a commit to a broker gone silent) held the
// stop until the scheduler killed the process (Kubernetes, 30 s after its SIGTERM), with
// nothing said. A second signal exits at once, with 128 + its number as a shell reports a
// command a signal ended (130 for Ctrl-C), after atExit: signal.NotifyContext kept catching
// the signals until the job returned, so a stop that waited on a hung output could only be
// killed. stop restores the signals' default behaviour.
func stopOnSignal(stderr io.Writer, bound time.Duration, atExit func()) (ctx context.Context, stop func()) {
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
		fmt.Fprintf(stderr, "fleetpipeline: stopping: finishing the batch in flight and closing the outputs, for at most %v (-shutdown-timeout); interrupt again to exit at once\n", bound)
		cancel()
		timeout := time.NewTimer(bound)
		defer timeout.Stop()
		code := 1
		select {
		case sig := <-sigs:
			fmt.Fprintln(stderr, "fleetpipeline: interrupt again: exiting at once; what was not committed is read again by the next run")
			if s, ok := sig.(syscall.Signal); ok {
				code = 128 + int(s)
			}
		case <-timeout.C:
			fmt.Fprintf(stderr, "fleetpipeline: the stop did not end within -shutdown-timeout (%v): exiting 1; what the job had not written and committed by then "+
				"(the batch in flight, its commit, dead letters in flight) is read again from the committed offsets by the next run: nothing is lost\n", bound)
		case <-quit:
			return
		}
		atExit()
		os.Exit(code)
	}()
	return ctx, func() {
		signal.Stop(sigs)
		close(quit)
		cancel()
	}
}
