package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Reasons Classify gives.
const (
	ReasonLoopback    = "a loopback address"
	ReasonLinkLocal   = "a link-local address"
	ReasonMetadata    = "a cloud metadata address"
	ReasonUnspecified = "an unspecified (this host) address"
	ReasonMulticast   = "a multicast or broadcast address"
	ReasonSelf        = "this server's own address"
)

// metadata are the cloud providers' instance metadata endpoints that are
// not link-local: AWS's IPv6 one and Alibaba Cloud's.
var metadata = []netip.Addr{
	netip.MustParseAddr("169.254.169.254"),
	netip.MustParseAddr("fd00:ec2::254"),
	netip.MustParseAddr("100.100.100.200"),
}

var (
	thisNetwork = netip.MustParsePrefix("0.0.0.0/8")
	broadcast   = netip.MustParseAddr("255.255.255.255")
	nat64       = netip.MustParsePrefix("64:ff9b::/96")
)

// Classify says why ip is refused by default, or "" when it is allowed.
// An IPv4 address inside IPv6 (mapped, or NAT64's 64:ff9b::/96) is judged
// as the IPv4 address it carries.
func Classify(ip netip.Addr) string {
	ip = ip.Unmap()
	if nat64.Contains(ip) {
		b := ip.As16()
		ip = netip.AddrFrom4([4]byte(b[12:]))
	}
	for _, m := range metadata {
		if ip == m {
			return ReasonMetadata
		}
	}
	switch {
	case !ip.IsValid():
		return "not an IP address"
	case ip.IsLoopback():
		return ReasonLoopback
	case ip.IsUnspecified(), thisNetwork.Contains(ip):
		return ReasonUnspecified
	case ip.IsLinkLocalUnicast():
		return ReasonLinkLocal
	case ip.IsMulticast(), ip.IsLinkLocalMulticast(), ip.IsInterfaceLocalMulticast(), ip == broadcast:
		return ReasonMulticast
	}
	return ""
}

// DeniedError is a call the policy refuses. It names the host (and port)
// refused, never the URL's path or query.
type DeniedError struct {
	// Host is the address or host name refused.
	Host string
	// Reason says why.
	Reason string
	// Hint says how an operator allows it; empty when nothing does.
	Hint string
}

func (e *DeniedError) Error() string {
	msg := "refused by the egress policy: " + e.Host + " is " + e.Reason
	if e.Hint != "" {
		msg += " (" + e.Hint + ")"
	}
	return msg
}

// IsDenied reports whether err is, or wraps, a refusal.
func IsDenied(err error) bool {
	var d *DeniedError
	return errors.As(err, &d)
}

// Policy says where calls may connect. The zero Policy refuses what
// Classify refuses.
type Policy struct {
	// Allow are ranges allowed although Classify refuses them (such as
	// 127.0.0.0/8 for a laptop's or a test's stand-ins).
	Allow []netip.Prefix
	// Self are the server's own listen addresses: refused whatever Allow
	// says. An unspecified address (0.0.0.0:8080) means that port on
	// every address; see ListenAddrs.
	Self []netip.AddrPort
	// AllowFlag is the flag that sets Allow, named in refusals
	// ("sortie server --egress-allow").
	AllowFlag string
}

// Check says whether a connection to ap may be made.
func (p *Policy) Check(ap netip.AddrPort) error {
	ip := ap.Addr().Unmap()
	for _, s := range p.Self {
		if s.Port() == ap.Port() && s.Addr().Unmap() == ip {
			return &DeniedError{Host: ap.String(), Reason: ReasonSelf}
		}
	}
	reason := Classify(ip)
	if reason == "" {
		return nil
	}
	for _, a := range p.Allow {
		if a.Contains(ip) {
			return nil
		}
	}
	d := &DeniedError{Host: ap.String(), Reason: reason}
	if p.AllowFlag != "" && ip.IsValid() {
		d.Hint = "an operator may allow it with " + p.AllowFlag + " " + netip.PrefixFrom(ip, ip.BitLen()).String()
	}
	return d
}

// Control is a net.Dialer Control func: it refuses to connect to an
// address the policy does not allow. It sees the address after DNS, for
// every connection, redirects included.
func (p *Policy) Control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &DeniedError{Host: address, Reason: "not an IP address and port"}
	}
	return p.Check(ap)
}

// Transport is an http.Transport whose connections the policy checks.
// HTTPS_PROXY and NO_PROXY are honoured: then the proxy's address is what
// is dialed.
func (p *Policy) Transport() *http.Transport {
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Control: p.Control}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// Client is an http.Client for calls made on a deployer's behalf: its
// connections are checked by the policy, every request (each redirect
// too) by the Scope of its context, and a request carrying a secret is not
// redirected to another host. timeout bounds each call; zero means none.
func (p *Policy) Client(timeout time.Duration) *http.Client {
	return &http.Client{Transport: p.Guard(p.Transport()), CheckRedirect: CheckRedirect, Timeout: timeout}
}

// Guard wraps next so that each request is checked, before it is sent,
// against the Scope of its context and, when its host is an IP address,
// against the policy (which a proxy would otherwise hide).
func (p *Policy) Guard(next http.RoundTripper) http.RoundTripper {
	return guard{p: p, next: next}
}

type guard struct {
	p    *Policy
	next http.RoundTripper
}

func (g guard) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := g.check(req); err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	return g.next.RoundTrip(req)
}

func (g guard) check(req *http.Request) error {
	if err := ScopeOf(req.Context()).Check(req.URL); err != nil {
		return err
	}
	if ip, err := netip.ParseAddr(req.URL.Hostname()); err == nil {
		port, _ := strconv.ParseUint(portOf(req.URL), 10, 16)
		return g.p.Check(netip.AddrPortFrom(ip, uint16(port)))
	}
	return nil
}

// CheckRedirect is http.Client's CheckRedirect for calls on a deployer's
// behalf: at most ten redirects, and none to another host (or from https
// to http) when the request carries a secret.
func CheckRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	if !ScopeOf(req.Context()).Secret {
		return nil
	}
	from := via[0].URL
	if !strings.EqualFold(from.Hostname(), req.URL.Hostname()) || portOf(from) != portOf(req.URL) ||
		(from.Scheme == "https" && req.URL.Scheme != "https") {
		return &DeniedError{Host: hostPort(req.URL), Reason: "a redirect away from " + hostPort(from) + ", and the request carries a secret"}
	}
	return nil
}

// ListenAddrs are the addresses a listener on addr answers at: addr
// itself, or with an unspecified IP, its port on every address of this
// host's interfaces.
func ListenAddrs(addr netip.AddrPort) ([]netip.AddrPort, error) {
	if !addr.Addr().IsUnspecified() {
		return []netip.AddrPort{addr}, nil
	}
	ifaddrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("egress: the host's addresses: %w", err)
	}
	out := []netip.AddrPort{addr, netip.AddrPortFrom(netip.IPv6Loopback(), addr.Port()), netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), addr.Port())}
	for _, a := range ifaddrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, netip.AddrPortFrom(p.Addr(), addr.Port()))
		}
	}
	return out, nil
}

// ParseAllow parses an allow-list: CIDR ranges or single addresses,
// comma-separated or one per item.
func ParseAllow(items []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, item := range items {
		for _, s := range strings.Split(item, ",") {
			if s = strings.TrimSpace(s); s == "" {
				continue
			}
			p, err := netip.ParsePrefix(s)
			if err != nil {
				ip, aerr := netip.ParseAddr(s)
				if aerr != nil {
					return nil, fmt.Errorf("%q is not a CIDR range (such as 127.0.0.0/8) or an IP address", s)
				}
				p = netip.PrefixFrom(ip, ip.BitLen())
			}
			out = append(out, p.Masked())
		}
	}
	return out, nil
}

// Loopback is the allow-list of a laptop or a test whose stand-ins listen
// on loopback.
var Loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

func portOf(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if u.Scheme == "https" {
		return "443"
	}
	return "80"
}

func hostPort(u *url.URL) string { return net.JoinHostPort(u.Hostname(), portOf(u)) }

type scopeKey struct{}

// WithScope returns ctx carrying s: what the requests made with it hold.
func WithScope(ctx context.Context, s Scope) context.Context {
	return context.WithValue(ctx, scopeKey{}, s)
}

// ScopeOf is the Scope ctx carries; the zero Scope when none.
func ScopeOf(ctx context.Context) Scope {
	s, _ := ctx.Value(scopeKey{}).(Scope)
	return s
}
