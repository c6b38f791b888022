package egress

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// Scope is what a request holds, for the checks made on each of its hops.
type Scope struct {
	// Secret: a secret value was rendered into the request (or its
	// credentials): it is not redirected to another host.
	Secret bool
	// Restricted are the host-restricted secrets it holds: each hop's host
	// must be one that every one of them allows.
	Restricted []Restriction
}

// Restriction is a secret that may be sent only to some hosts.
type Restriction struct {
	// Secret is the secret's name (never its value).
	Secret string
	// Hosts are the secret's allowed hosts: see MatchHost.
	Hosts []string
}

// Add records a secret named name, with its allowed hosts (nil means
// unrestricted).
func (s *Scope) Add(name string, hosts []string) {
	s.Secret = true
	if hosts == nil {
		return
	}
	for _, r := range s.Restricted {
		if r.Secret == name {
			return
		}
	}
	s.Restricted = append(s.Restricted, Restriction{Secret: name, Hosts: hosts})
}

// Check says whether u's host is one every restricted secret allows.
func (s Scope) Check(u *url.URL) error {
	for _, r := range s.Restricted {
		if !r.Allows(u) {
			return &DeniedError{Host: hostPort(u), Reason: fmt.Sprintf("not an allowed host of secret %s (%s)", r.Secret, strings.Join(r.Hosts, ", "))}
		}
	}
	return nil
}

// Allows says whether u's host matches one of r's hosts.
func (r Restriction) Allows(u *url.URL) bool {
	for _, h := range r.Hosts {
		if MatchHost(h, u) {
			return true
		}
	}
	return false
}

// MatchHost says whether u's host matches pattern: a host name or IP
// address (any port), the same with :PORT (that port only, the scheme's
// default when u has none), or *.DOMAIN (any name under DOMAIN, not DOMAIN
// itself). Names compare without case and a trailing dot.
func MatchHost(pattern string, u *url.URL) bool {
	host, port := splitPattern(pattern)
	if port != "" && port != portOf(u) {
		return false
	}
	name := normalHost(u.Hostname())
	if rest, ok := strings.CutPrefix(host, "*."); ok {
		return strings.HasSuffix(name, "."+rest)
	}
	return name == host
}

// ValidateHost says whether pattern is an allowed host MatchHost
// understands, and why not.
func ValidateHost(pattern string) error {
	if pattern == "" {
		return errors.New("an allowed host is empty")
	}
	if strings.ContainsFunc(pattern, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return fmt.Errorf("allowed host %q: a host has no spaces or control characters", pattern)
	}
	if strings.ContainsAny(pattern, "/@?#") {
		return fmt.Errorf("allowed host %q: give a host name, host:port or *.domain, not a URL", pattern)
	}
	host, port := splitPattern(pattern)
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("allowed host %q: the port is not a number from 1 to 65535", pattern)
		}
	}
	name := strings.TrimPrefix(host, "*.")
	if name == "" || strings.Contains(name, "*") || strings.HasPrefix(name, ".") || strings.Contains(name, "..") {
		return fmt.Errorf("allowed host %q: a wildcard is only *. before a domain (*.example.com)", pattern)
	}
	return nil
}

// splitPattern splits host[:port] (IPv6 in brackets when a port follows),
// the host normalised.
func splitPattern(pattern string) (host, port string) {
	pattern = strings.TrimSpace(pattern)
	if h, p, err := net.SplitHostPort(pattern); err == nil {
		return normalHost(h), p
	}
	return normalHost(strings.Trim(pattern, "[]")), ""
}

func normalHost(h string) string { return strings.TrimSuffix(strings.ToLower(h), ".") }
