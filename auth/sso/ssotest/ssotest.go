package ssotest

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Client is a client registered at the provider.
type Client struct {
	ID, Secret string
	// Kind is "web" (code flow, for the console) or "device".
	Kind         string
	RedirectURIs []string
}

// User is a user of the provider, with its groups.
type User struct {
	ID, Username, Password string
	FirstName, LastName    string
	Email                  string
	Groups                 []string
}

// Provider is a running provider.
type Provider struct {
	// Issuer is its issuer URL, with the trailing slash it publishes.
	Issuer string
}

// Start builds (once) and starts a provider with clients and users on a
// free loopback port; it stops when the test ends.
func Start(t testing.TB, clients []Client, users []User) *Provider {
	t.Helper()
	return StartOn(t, "127.0.0.1:0", clients, users)
}

// FreeAddr returns a loopback address with a port free now, for a provider
// whose issuer must be known before it starts (StartOn).
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// StartOn is Start listening on addr: the issuer is "http://" + addr + "/".
func StartOn(t testing.TB, addr string, clients []Client, users []User) *Provider {
	t.Helper()
	bin, err := build(t)
	if err != nil {
		t.Fatalf("ssotest: build the provider: %v", err)
	}
	cfg, _ := json.Marshal(map[string]any{"Clients": clients, "Users": users})
	path := filepath.Join(t.TempDir(), "oidc.json")
	if err := os.WriteFile(path, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-config", path, "-addr", addr)
	logPath := filepath.Join(t.TempDir(), "oidc.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = logf
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("ssotest: start the provider: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			if len(b) > 8000 {
				b = b[len(b)-8000:]
			}
			t.Logf("OIDC provider log (end):\n%s", b)
		}
	})
	line := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(out)
		if s.Scan() {
			line <- s.Text()
		}
		close(line)
		io.Copy(io.Discard, out)
	}()
	select {
	case l := <-line:
		issuer, ok := strings.CutPrefix(l, "issuer ")
		if !ok {
			t.Fatalf("ssotest: the provider said %q", l)
		}
		return &Provider{Issuer: issuer}
	case <-time.After(time.Minute):
		t.Fatal("ssotest: the provider did not start within a minute")
	}
	return nil
}

// build compiles tools/oidc/provider into the cache, once per version of
// the tools module.
func build(t testing.TB) (string, error) {
	dir, err := toolsDir()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, f := range []string{"go.mod", "go.sum", "provider/main.go"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			return "", err
		}
		h.Write(b)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(cache, "sortie", "oidc-provider-"+hex.EncodeToString(h.Sum(nil))[:16])
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		return "", err
	}
	tmp := fmt.Sprintf("%s.%d.tmp", bin, os.Getpid())
	cmd := exec.Command("go", "build", "-o", tmp, "./provider")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build in %s: %v\n%s", dir, err, out)
	}
	t.Logf("ssotest: built the OIDC provider into %s", bin)
	return bin, os.Rename(tmp, bin)
}

func toolsDir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		cand := filepath.Join(dir, "tools", "oidc")
		if _, err := os.Stat(filepath.Join(cand, "go.mod")); err == nil {
			return cand, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("tools/oidc/go.mod not found above the working directory")
		}
		dir = parent
	}
}

// ApproveDevice logs user in at the provider's device page and approves
// userCode, as a person would in a browser: the page's own forms, posted
// with net/http.
func (p *Provider) ApproveDevice(ctx context.Context, verificationURI, userCode, username, password string) error {
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	base, err := url.Parse(verificationURI)
	if err != nil {
		return err
	}
	post := func(path string, form url.Values) (string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base.ResolveReference(&url.URL{Path: path}).String(), strings.NewReader(form.Encode()))
		if err != nil {
			return "", err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := hc.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return string(b), fmt.Errorf("POST %s: %d", path, resp.StatusCode)
		}
		return string(b), nil
	}
	page, err := post("/device/login", url.Values{"user_code": {userCode}, "username": {username}, "password": {password}})
	if err != nil {
		return err
	}
	if !strings.Contains(page, "confirm") {
		return fmt.Errorf("the device login was refused: %.300s", page)
	}
	page, err = post("/device/confirm", url.Values{"action": {"allowed"}})
	if err != nil {
		return err
	}
	if !strings.Contains(page, "allowed") {
		return fmt.Errorf("the device approval was refused: %.300s", page)
	}
	return nil
}
