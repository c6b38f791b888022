package auth_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/sortie-cd/sortie/auth"
)

// TestConcurrentHashingIsBounded reproduces issue 16 item 7: every token
// attempt costs a 19 MiB argon2id verification and nothing capped how many
// ran at once, so unauthenticated requests could exhaust the server's
// memory. With two hash slots held by two requests (a hook blocks inside
// each slot), further token requests are answered 429 at once, the right
// secret's too, instead of starting a third hash; once the slots free, the
// right secret gets its token.
func TestConcurrentHashingIsBounded(t *testing.T) {
	f := userFixture(t, auth.Options{MaxHashes: 2})
	c, secret := f.credential(t, "main", "deployer")
	entered := make(chan struct{}, 16)
	release := make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	t.Cleanup(free)
	auth.SetHashHook(f.svc, func() {
		entered <- struct{}{}
		<-release
	})
	srv := httptest.NewServer(f.svc.TokenHandler())
	t.Cleanup(srv.Close)
	post := func(form url.Values) *http.Response {
		resp, err := http.Post(srv.URL, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
		if err != nil {
			t.Error(err)
			return nil
		}
		resp.Body.Close()
		return resp
	}
	client := func(secret string) url.Values {
		return url.Values{"grant_type": {"client_credentials"}, "client_id": {c.ClientID}, "client_secret": {secret}}
	}

	held := make(chan int, 2)
	for range 2 {
		go func() {
			if resp := post(client("a wrong secret")); resp != nil {
				held <- resp.StatusCode
			}
		}()
	}
	<-entered
	<-entered
	// Both slots are taken. Each further request either is answered at
	// once (the fix) or starts a third hash (the attack).
	for name, form := range map[string]url.Values{
		"the right secret":     client(secret),
		"an unknown client id": {"grant_type": {"client_credentials"}, "client_id": {"nobody"}, "client_secret": {"x"}},
		"a password":           passwordForm("nobody", "a long enough password", ""),
	} {
		answered := make(chan *http.Response, 1)
		go func() { answered <- post(form) }()
		select {
		case resp := <-answered:
			if resp == nil || resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "1" {
				t.Errorf("%s while the slots are full: %+v, want 429 with Retry-After: 1", name, resp)
			}
		case <-entered:
			free()
			t.Fatalf("%s started a third hash while two ran", name)
		}
	}
	free()
	for range 2 {
		if code := <-held; code != http.StatusUnauthorized {
			t.Errorf("a request that held a slot: %d, want 401", code)
		}
	}
	if resp := post(client(secret)); resp == nil || resp.StatusCode != 200 {
		t.Errorf("the right secret once the slots are free: %+v", resp)
	}
}
