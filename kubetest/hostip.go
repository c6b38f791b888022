package kubetest

import (
	"net"
	"testing"
)

// HostIP is an address of this machine that is not loopback, for a test's
// stand-in of what kwok's pods do not run: the API server's service proxy
// refuses loopback endpoints, as it should. It fails the test when the
// machine has none.
func HostIP(t testing.TB) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
			return n.IP.String()
		}
	}
	t.Fatal("kubetest: this machine has no non-loopback IPv4 address for a stand-in the API server's service proxy reaches (it refuses loopback endpoints)")
	return ""
}
