package proctest

import (
	"io"
	"net"
	"sync"
	"testing"
)

// Balancer forwards each new TCP connection to the address it points at
// then, as a load balancer in front of server replicas would; connections
// already made stay where they are (until that server goes away).
type Balancer struct {
	// Addr is where clients connect.
	Addr string
	mu   sync.Mutex
	to   string
}

// NewBalancer listens on a loopback port until the test ends.
func NewBalancer(t testing.TB) *Balancer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	b := &Balancer{Addr: ln.Addr().String()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.mu.Lock()
			to := b.to
			b.mu.Unlock()
			s, err := net.Dial("tcp", to)
			if err != nil {
				c.Close()
				continue
			}
			go func() { io.Copy(s, c); s.Close() }()
			go func() { io.Copy(c, s); c.Close() }()
		}
	}()
	return b
}

// Point sends the next connections to addr.
func (b *Balancer) Point(addr string) {
	b.mu.Lock()
	b.to = addr
	b.mu.Unlock()
}
