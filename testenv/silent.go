package testenv

import (
	"net"
	"sync"
	"testing"
)

// SilentListener listens on a loopback port that accepts connections and never answers: a
// hung broker or node, or a load balancer with nothing behind it. accepted receives each
// connection once it is accepted (up to 64 unread; later ones are not sent); the listener
// and the connections are closed when the test ends.
func SilentListener(t testing.TB) (addr string, accepted <-chan net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	ch := make(chan net.Conn, 64)
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
			select {
			case ch <- conn:
			default: // nobody waits for more
			}
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return ln.Addr().String(), ch
}
