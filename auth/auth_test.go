package auth_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
	"github.com/sortie-cd/sortie/auth"
	"github.com/sortie-cd/sortie/pipeline"
	"github.com/sortie-cd/sortie/store"
	"github.com/sortie-cd/sortie/store/sqlite"
)

const issuer = "https://sortie.test"

// clock is a settable clock for token lifetimes and rate limits.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// openStore opens a real SQLite store in a temporary folder.
func openStore(t *testing.T) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "sortie.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

type fixture struct {
	svc   *auth.Service
	store *sqlite.Store
	clock *clock
	keys  string
}

func newFixture(t *testing.T, opts auth.Options) *fixture {
	t.Helper()
	f := &fixture{store: openStore(t), clock: &clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}, keys: filepath.Join(t.TempDir(), "keys")}
	f.build(t, opts)
	return f
}

// build makes f's service with opts, on f's store, keys and clock.
func (f *fixture) build(t *testing.T, opts auth.Options) {
	t.Helper()
	ks, err := auth.LoadKeys(f.keys)
	if err != nil {
		t.Fatal(err)
	}
	opts.Credentials, opts.Keys, opts.Issuer, opts.Now = f.store, ks, issuer, f.clock.Now
	if f.svc, err = auth.New(opts); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) credential(t *testing.T, tenant string, roles ...string) (store.Credential, string) {
	t.Helper()
	c, secret, err := f.svc.CreateCredential(t.Context(), tenant, "ci", roles)
	if err != nil {
		t.Fatal(err)
	}
	return c, secret
}

func TestSecretHash(t *testing.T) {
	h1, err := auth.HashSecret("s3cret")
	if err != nil {
		t.Fatal(err)
	}
	h2, _ := auth.HashSecret("s3cret")
	if string(h1) == string(h2) {
		t.Error("two hashes of one secret are equal: no salt")
	}
	if !strings.HasPrefix(string(h1), "$argon2id$v=19$") || strings.Contains(string(h1), "s3cret") {
		t.Errorf("hash %q", h1)
	}
	if !auth.VerifySecret(h1, "s3cret") || !auth.VerifySecret(h2, "s3cret") {
		t.Error("the right secret does not verify")
	}
	for _, wrong := range []string{"", "s3cre", "s3cret ", "S3cret"} {
		if auth.VerifySecret(h1, wrong) {
			t.Errorf("%q verifies", wrong)
		}
	}
	for _, bad := range []string{"", "s3cret", "$argon2id$v=19$m=1,t=1,p=1$AAAA$AAAA", "$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$" + strings.Repeat("A", 43)} {
		if auth.VerifySecret([]byte(bad), "s3cret") {
			t.Errorf("malformed hash %q verifies", bad)
		}
	}
}

func TestNewCredentialSecret(t *testing.T) {
	c, secret, err := auth.NewCredential("main", "ci", []string{"deployer"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(secret, auth.SecretPrefix))
	if err != nil || len(raw) < 32 {
		t.Fatalf("secret %q: %d random bytes, %v", secret, len(raw), err)
	}
	if c.ClientID == "" || strings.Contains(string(c.SecretHash), secret) || !auth.VerifySecret(c.SecretHash, secret) {
		t.Errorf("credential %+v does not hold a hash of its secret", c)
	}
}

func TestKeysArePrivateAndReloaded(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	ks, err := auth.LoadKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ks.IDs()) != 1 {
		t.Fatalf("ids %v", ks.IDs())
	}
	for _, p := range []string{dir, filepath.Join(dir, ks.IDs()[0]+".pem")} {
		info, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v", p, info.Mode().Perm())
		}
	}
	again, err := auth.LoadKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ks.IDs(), again.IDs()); diff != "" {
		t.Errorf("reload made a new key:\n%s", diff)
	}
	os.Chmod(filepath.Join(dir, ks.IDs()[0]+".pem"), 0o644)
	if _, err := auth.LoadKeys(dir); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("a world-readable key loaded: %v", err)
	}
}

func TestRotationKeepsOldTokensValid(t *testing.T) {
	f := newFixture(t, auth.Options{})
	c, _ := f.credential(t, "main", "deployer")
	old, err := f.svc.Issue(&c)
	if err != nil {
		t.Fatal(err)
	}
	newKid, err := auth.AddKey(f.keys, time.Now().Add(time.Hour)) // ids sort by creation time
	if err != nil {
		t.Fatal(err)
	}
	ks, err := auth.LoadKeys(f.keys)
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := auth.New(auth.Options{Credentials: f.store, Keys: ks, Issuer: issuer, Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rotated.Verify(old.AccessToken); err != nil {
		t.Errorf("a token of the old key no longer verifies: %v", err)
	}
	fresh, _ := rotated.Issue(&c)
	tok, _, err := jwt.NewParser().ParseUnverified(fresh.AccessToken, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	if tok.Header["kid"] != newKid || tok.Header["alg"] != "EdDSA" {
		t.Errorf("new token header %v, want kid %s and EdDSA", tok.Header, newKid)
	}
}

func TestTokenClaims(t *testing.T) {
	f := newFixture(t, auth.Options{})
	c, _ := f.credential(t, "main", "deployer", "qa")
	tok, err := f.svc.Issue(&c)
	if err != nil {
		t.Fatal(err)
	}
	if want := f.clock.Now().Add(auth.DefaultTTL); !tok.ExpiresAt.Equal(want) {
		t.Errorf("expires %v, want %v", tok.ExpiresAt, want)
	}
	var claims jwt.MapClaims
	if _, _, err := jwt.NewParser().ParseUnverified(tok.AccessToken, &claims); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"tenant", "sub", "name", "roles", "iss", "aud", "exp", "iat", "jti"} {
		if _, ok := claims[k]; !ok {
			t.Errorf("claim %s missing from %v", k, claims)
		}
	}
	p, err := f.svc.Verify(tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	want := auth.Principal{Tenant: "main", Name: "ci", ClientID: c.ClientID, Roles: []string{"deployer", "qa"},
		IssuedAt: f.clock.Now(), ExpiresAt: tok.ExpiresAt}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("principal (-want +got):\n%s", diff)
	}
}

func TestVerifyRefuses(t *testing.T) {
	f := newFixture(t, auth.Options{})
	c, _ := f.credential(t, "main", "deployer")
	good, _ := f.svc.Issue(&c)

	other := newFixture(t, auth.Options{})
	foreign, _ := other.svc.Issue(&c) // same claims, another server's key

	_, stranger, _ := ed25519.GenerateKey(rand.Reader)
	sign := func(method jwt.SigningMethod, key any, claims jwt.MapClaims, kid string) string {
		tk := jwt.NewWithClaims(method, claims)
		if kid != "" {
			tk.Header["kid"] = kid
		}
		s, err := tk.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	var kid string
	if tk, _, err := jwt.NewParser().ParseUnverified(good.AccessToken, jwt.MapClaims{}); err == nil {
		kid = tk.Header["kid"].(string)
	}
	now := f.clock.Now()
	claims := func(edit func(jwt.MapClaims)) jwt.MapClaims {
		m := jwt.MapClaims{"tenant": "main", "sub": c.ClientID, "roles": []string{"organization-admin"},
			"iss": issuer, "aud": auth.DefaultAudience, "iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}
		if edit != nil {
			edit(m)
		}
		return m
	}
	tampered := func() string {
		parts := strings.Split(good.AccessToken, ".")
		payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
		payload = []byte(strings.Replace(string(payload), `"deployer"`, `"organization-admin"`, 1))
		parts[1] = base64.RawURLEncoding.EncodeToString(payload)
		return strings.Join(parts, ".")
	}()

	for name, tc := range map[string]struct {
		token string
		want  error
	}{
		"another server's key":   {foreign.AccessToken, auth.ErrTokenInvalid},
		"signed by a stranger":   {sign(jwt.SigningMethodEdDSA, stranger, claims(nil), kid), auth.ErrTokenInvalid},
		"payload tampered":       {tampered, auth.ErrTokenInvalid},
		"alg none":               {sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(nil), kid), auth.ErrTokenInvalid},
		"HMAC":                   {sign(jwt.SigningMethodHS256, []byte("k"), claims(nil), kid), auth.ErrTokenInvalid},
		"wrong issuer":           {f.resign(t, claims(func(m jwt.MapClaims) { m["iss"] = "https://evil" })), auth.ErrTokenInvalid},
		"wrong audience":         {f.resign(t, claims(func(m jwt.MapClaims) { m["aud"] = "kubernetes" })), auth.ErrTokenInvalid},
		"no expiry":              {f.resign(t, claims(func(m jwt.MapClaims) { delete(m, "exp") })), auth.ErrTokenInvalid},
		"no tenant":              {f.resign(t, claims(func(m jwt.MapClaims) { delete(m, "tenant") })), auth.ErrTokenInvalid},
		"expired":                {f.resign(t, claims(func(m jwt.MapClaims) { m["exp"] = now.Add(-time.Minute).Unix() })), auth.ErrTokenExpired},
		"not a JWT":              {"hello", auth.ErrTokenInvalid},
		"empty":                  {"", auth.ErrTokenInvalid},
		"unknown key id":         {sign(jwt.SigningMethodEdDSA, stranger, claims(nil), "nope"), auth.ErrTokenInvalid},
		"issued in the future":   {f.resign(t, claims(func(m jwt.MapClaims) { m["iat"] = now.Add(time.Hour).Unix() })), auth.ErrTokenInvalid},
		"good token, sanity run": {good.AccessToken, nil},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := f.svc.Verify(tc.token)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Errorf("Verify = %v, want %v", err, tc.want)
			}
		})
	}

	// Time passes: the good token expires.
	f.clock.Advance(auth.DefaultTTL + time.Minute)
	if _, err := f.svc.Verify(good.AccessToken); !errors.Is(err, auth.ErrTokenExpired) {
		t.Errorf("after its lifetime: %v", err)
	}
}

// resign signs claims with the fixture's own current key, the way only the
// server can: tokens that fail on their claims, not their signature.
func (f *fixture) resign(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	ks, err := auth.LoadKeys(f.keys)
	if err != nil {
		t.Fatal(err)
	}
	kid := ks.IDs()[len(ks.IDs())-1]
	b, err := os.ReadFile(filepath.Join(f.keys, kid+".pem"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := jwt.ParseEdPrivateKeyFromPEM(b)
	if err != nil {
		t.Fatal(err)
	}
	tk := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	tk.Header["kid"] = kid
	s, err := tk.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// tokenRequest posts a form to the token endpoint from addr.
func tokenRequest(h http.Handler, addr string, form url.Values, basicID, basicSecret string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("POST", auth.TokenPath, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.RemoteAddr = addr
	if basicID != "" {
		r.SetBasicAuth(url.QueryEscape(basicID), url.QueryEscape(basicSecret))
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

type oauthBody struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Error       string `json:"error"`
	ErrorID     string `json:"error_id"`
	Errors      []struct {
		Message, Code string
	} `json:"errors"`
}

func decode(t *testing.T, w *httptest.ResponseRecorder) oauthBody {
	t.Helper()
	var b oauthBody
	if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil {
		t.Fatalf("body %q: %v", w.Body, err)
	}
	return b
}

func TestTokenEndpoint(t *testing.T) {
	f := newFixture(t, auth.Options{})
	c, secret := f.credential(t, "main", "deployer")
	h := f.svc.TokenHandler()
	form := func(kv ...string) url.Values {
		v := url.Values{}
		for i := 0; i < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}

	t.Run("form", func(t *testing.T) {
		w := tokenRequest(h, "192.0.2.1:1000", form("grant_type", "client_credentials", "client_id", c.ClientID, "client_secret", secret), "", "")
		b := decode(t, w)
		if w.Code != 200 || b.TokenType != "Bearer" || b.ExpiresIn != int64(auth.DefaultTTL/time.Second) || w.Header().Get("Cache-Control") != "no-store" {
			t.Fatalf("%d %s %v", w.Code, w.Body, w.Header())
		}
		p, err := f.svc.Verify(b.AccessToken)
		if err != nil || p.ClientID != c.ClientID || p.Tenant != "main" {
			t.Errorf("token of %+v: %v", p, err)
		}
		if strings.Contains(w.Body.String(), secret) {
			t.Error("the response contains the secret")
		}
	})
	t.Run("basic", func(t *testing.T) {
		w := tokenRequest(h, "192.0.2.1:1000", form("grant_type", "client_credentials"), c.ClientID, secret)
		if w.Code != 200 || decode(t, w).AccessToken == "" {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
	})

	for name, tc := range map[string]struct {
		form        url.Values
		basic       [2]string
		contentType string
		status      int
		code        string
	}{
		"wrong secret":       {form: form("grant_type", "client_credentials", "client_id", c.ClientID, "client_secret", secret+"x"), status: 401, code: "invalid_client"},
		"unknown client":     {form: form("grant_type", "client_credentials", "client_id", "nobody", "client_secret", secret), status: 401, code: "invalid_client"},
		"no secret":          {form: form("grant_type", "client_credentials", "client_id", c.ClientID), status: 401, code: "invalid_client"},
		"wrong basic secret": {form: form("grant_type", "client_credentials"), basic: [2]string{c.ClientID, "nope"}, status: 401, code: "invalid_client"},
		"both methods":       {form: form("grant_type", "client_credentials", "client_secret", secret), basic: [2]string{c.ClientID, secret}, status: 400, code: "invalid_request"},
		"password grant":     {form: form("grant_type", "password", "client_id", c.ClientID, "client_secret", secret), status: 400, code: "unsupported_grant_type"},
		"no grant":           {form: form("client_id", c.ClientID, "client_secret", secret), status: 400, code: "invalid_request"},
		"JSON body":          {form: form("grant_type", "client_credentials"), contentType: "application/json", status: 400, code: "invalid_request"},
	} {
		t.Run(name, func(t *testing.T) {
			r := httptest.NewRequest("POST", auth.TokenPath, strings.NewReader(tc.form.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tc.contentType != "" {
				r.Header.Set("Content-Type", tc.contentType)
			}
			if tc.basic[0] != "" {
				r.SetBasicAuth(tc.basic[0], tc.basic[1])
			}
			r.RemoteAddr = "198.51.100.7:1234"
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			b := decode(t, w)
			if w.Code != tc.status || b.Error != tc.code || b.ErrorID == "" || len(b.Errors) != 1 || b.AccessToken != "" {
				t.Errorf("%d %s, want %d %s", w.Code, w.Body, tc.status, tc.code)
			}
			if tc.basic[0] != "" && tc.status == 401 && !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Basic") {
				t.Errorf("no Basic challenge: %v", w.Header())
			}
		})
	}
}

func TestTokenEndpointLimitsFailuresPerClient(t *testing.T) {
	f := newFixture(t, auth.Options{ClientLimit: auth.Limit{Rate: 1.0 / 60, Burst: 2}})
	c, secret := f.credential(t, "main", "deployer")
	h := f.svc.TokenHandler()
	attempt := func(secret, addr string) *httptest.ResponseRecorder {
		return tokenRequest(h, addr, url.Values{"grant_type": {"client_credentials"}, "client_id": {c.ClientID}, "client_secret": {secret}}, "", "")
	}
	// Successes do not count.
	for range 5 {
		if w := attempt(secret, "192.0.2.1:1"); w.Code != 200 {
			t.Fatalf("success: %d %s", w.Code, w.Body)
		}
	}
	// Two failures are allowed from one address (any port); the third is
	// refused before the secret is even checked, and so is the right
	// secret, from that address.
	for i, addr := range []string{"192.0.2.2:1", "192.0.2.2:2"} {
		if w := attempt("guess", addr); w.Code != 401 {
			t.Fatalf("failure %d: %d", i, w.Code)
		}
	}
	for _, s := range []string{"guess", secret} {
		w := attempt(s, "192.0.2.2:3")
		if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" || decode(t, w).Error != "slow_down" {
			t.Fatalf("after the burst: %d %s %v", w.Code, w.Body, w.Header())
		}
	}
	// Another client id is not affected.
	c2, secret2 := f.credential(t, "main", "viewer")
	if w := tokenRequest(h, "192.0.2.2:4", url.Values{"grant_type": {"client_credentials"}, "client_id": {c2.ClientID}, "client_secret": {secret2}}, "", ""); w.Code != 200 {
		t.Errorf("another client: %d", w.Code)
	}
	f.clock.Advance(time.Minute)
	if w := attempt(secret, "192.0.2.2:1"); w.Code != 200 {
		t.Errorf("a minute later: %d %s", w.Code, w.Body)
	}
}

func TestTokenEndpointLimitsPerAddress(t *testing.T) {
	f := newFixture(t, auth.Options{AddrLimit: auth.Limit{Rate: 1, Burst: 3}})
	h := f.svc.TokenHandler()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {"x"}, "client_secret": {"y"}}
	for i := range 3 {
		if w := tokenRequest(h, "203.0.113.9:4000", form, "", ""); w.Code != 401 {
			t.Fatalf("request %d: %d", i, w.Code)
		}
	}
	if w := tokenRequest(h, "203.0.113.9:4001", form, "", ""); w.Code != 429 || w.Header().Get("Retry-After") != "1" {
		t.Fatalf("4th request from the address: %d %v", w.Code, w.Header())
	}
	if w := tokenRequest(h, "203.0.113.10:4000", form, "", ""); w.Code != 401 {
		t.Errorf("another address: %d", w.Code)
	}
	f.clock.Advance(time.Second)
	if w := tokenRequest(h, "203.0.113.9:4000", form, "", ""); w.Code != 401 {
		t.Errorf("a second later: %d", w.Code)
	}
}

func TestMiddleware(t *testing.T) {
	f := newFixture(t, auth.Options{})
	c, _ := f.credential(t, "main", "viewer")
	tok, _ := f.svc.Issue(&c)
	var got auth.Principal
	h := f.svc.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = auth.PrincipalFrom(r.Context())
	}), nil)
	call := func(authz string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/api/v1/pipelines", nil)
		if authz != "" {
			r.Header.Set("Authorization", authz)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	if w := call("bearer " + tok.AccessToken); w.Code != 200 || got.ClientID != c.ClientID {
		t.Fatalf("valid token: %d, principal %+v", w.Code, got)
	}
	for authz, challenge := range map[string]string{
		"":                              `Bearer realm="sortie"`,
		"Bearer":                        `Bearer realm="sortie", error="invalid_token", error_description="the access token is invalid"`,
		"Basic " + tok.AccessToken:      `Bearer realm="sortie", error="invalid_token", error_description="the access token is invalid"`,
		"Bearer " + tok.AccessToken[1:]: `Bearer realm="sortie", error="invalid_token", error_description="the access token is invalid"`,
	} {
		w := call(authz)
		if w.Code != 401 || w.Header().Get("WWW-Authenticate") != challenge {
			t.Errorf("%q: %d %q", authz, w.Code, w.Header().Get("WWW-Authenticate"))
		}
	}
	f.clock.Advance(auth.DefaultTTL + time.Minute)
	if w := call("Bearer " + tok.AccessToken); w.Code != 401 || !strings.Contains(w.Header().Get("WWW-Authenticate"), "expired") {
		t.Errorf("expired: %d %q", w.Code, w.Header().Get("WWW-Authenticate"))
	}
}

func TestBootstrap(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	dataDir := filepath.Join(t.TempDir(), "data")
	path, err := auth.Bootstrap(ctx, st, dataDir, "http://127.0.0.1:8080")
	if err != nil {
		t.Fatal(err)
	}
	if path != filepath.Join(dataDir, auth.AdminCredentialsFile) {
		t.Fatalf("path %q", path)
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("file %v, %v", info, err)
	}
	b, _ := os.ReadFile(path)
	var file map[string]string
	if err := json.Unmarshal(b, &file); err != nil {
		t.Fatal(err)
	}
	if file["server"] != "http://127.0.0.1:8080" || file["client_id"] == "" || len(file["client_secret"]) < 43 || len(file) != 3 {
		t.Fatalf("file %s", b)
	}
	c, err := st.GetCredential(ctx, file["client_id"])
	if err != nil {
		t.Fatal(err)
	}
	if c.Tenant != store.DefaultTenant || !cmp.Equal(c.Roles, []string{"organization-admin"}) || !auth.VerifySecret(c.SecretHash, file["client_secret"]) {
		t.Errorf("stored credential %+v", c)
	}
	if strings.Contains(string(c.SecretHash), file["client_secret"]) {
		t.Error("the secret is stored in clear")
	}

	// The secret in the file gets a token.
	ks, _ := auth.LoadKeys(filepath.Join(dataDir, auth.KeysDir))
	svc, err := auth.New(auth.Options{Credentials: st, Keys: ks, Issuer: file["server"]})
	if err != nil {
		t.Fatal(err)
	}
	w := tokenRequest(svc.TokenHandler(), "127.0.0.1:5", url.Values{"grant_type": {"client_credentials"}}, file["client_id"], file["client_secret"])
	if w.Code != 200 {
		t.Fatalf("token with the bootstrap credential: %d %s", w.Code, w.Body)
	}

	// A second start leaves everything alone.
	path, err = auth.Bootstrap(ctx, st, dataDir, "http://other")
	if err != nil || path != "" {
		t.Fatalf("second bootstrap: %q, %v", path, err)
	}
	if again, _ := os.ReadFile(filepath.Join(dataDir, auth.AdminCredentialsFile)); string(again) != string(b) {
		t.Error("the second bootstrap rewrote the file")
	}
	if cs, _ := st.ListCredentials(ctx, store.DefaultTenant); len(cs) != 1 {
		t.Errorf("%d credentials", len(cs))
	}
}

// TestOthersCannotLockTheOwnerOut reproduces issue 16 item 6: anyone
// could lock a credential out by sending wrong secrets for its public
// client id (and a user by wrong passwords); the right secret then got
// 429 from everywhere. Failures now count per (id, address), an IPv6
// address by its /64: the attacker locks out only itself, and the owner,
// from another address, logs in.
func TestOthersCannotLockTheOwnerOut(t *testing.T) {
	f := userFixture(t, auth.Options{ClientLimit: auth.Limit{Rate: 1.0 / 60, Burst: 3}})
	c, secret := f.credential(t, "main", "deployer")
	const pw = "correct horse battery"
	if _, err := f.svc.CreateUser(t.Context(), "main", "alice", "", pw, []string{"deployer"}); err != nil {
		t.Fatal(err)
	}
	h := f.svc.TokenHandler()
	client := func(secret string) url.Values {
		return url.Values{"grant_type": {"client_credentials"}, "client_id": {c.ClientID}, "client_secret": {secret}}
	}
	for _, tc := range []struct {
		name                string
		attacker, neighbour string // neighbour: the attacker's other address, counted with it
		owner               string
		form                func(secret string) url.Values
		right               string
		refused             int
	}{
		{"secret, IPv4", "192.0.2.66:4000", "192.0.2.66:4001", "198.51.100.7:5000", client, secret, 401},
		{"secret, IPv6 /64", "[2001:db8:bad:1::1]:4000", "[2001:db8:bad:1:ffff::2]:4000", "[2001:db8:600d:1::1]:5000", client, secret, 401},
		{"password, IPv4", "192.0.2.77:4000", "192.0.2.77:4001", "198.51.100.8:5000", func(p string) url.Values { return passwordForm("alice", p, "") }, pw, 400},
		{"password, IPv6 /64", "[2001:db8:bad:2::1]:4000", "[2001:db8:bad:2::9]:4000", "[2001:db8:600d:2::1]:5000", func(p string) url.Values { return passwordForm("alice", p, "") }, pw, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for i := range 3 {
				if w := tokenRequest(h, tc.attacker, tc.form("wrong-guess-number-"+strconv.Itoa(i)), "", ""); w.Code != tc.refused {
					t.Fatalf("failure %d: %d %s", i, w.Code, w.Body)
				}
			}
			// The attacker is slowed down, from any address of its /64 ...
			for _, addr := range []string{tc.attacker, tc.neighbour} {
				if w := tokenRequest(h, addr, tc.form("wrong-guess-again"), "", ""); w.Code != http.StatusTooManyRequests {
					t.Errorf("the attacker's next guess from %s: %d, want 429", addr, w.Code)
				}
			}
			// ... and the owner is not.
			if w := tokenRequest(h, tc.owner, tc.form(tc.right), "", ""); w.Code != 200 {
				t.Errorf("the owner after the attack: %d %s, want 200", w.Code, w.Body)
			}
		})
	}
}

// TestBootstrapGiven: an operator's credential (a mounted Secret) becomes
// the first admin credential, once; bad ones are refused without echoing
// the secret.
func TestBootstrapGiven(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	write := func(id, secret string) {
		if err := os.WriteFile(filepath.Join(dir, auth.GivenClientIDFile), []byte(id+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, auth.GivenClientSecretFile), []byte(secret+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct{ id, secret, want string }{
		{"Admin_1", "sortie_0123456789abcdefghijklmnopqrstuvwxyz", "client-id"},
		{"admin-1", "short-secret-value", "client-secret"},
		{"admin-1", "sortie_0123456789abcdefghij klmnopqrstuvwxyz", "client-secret"},
	} {
		write(c.id, c.secret)
		_, err := auth.ReadGiven(dir)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), c.secret) {
			t.Errorf("ReadGiven(%q, secret): %v; want an error naming %s, without the secret", c.id, err, c.want)
		}
	}
	if _, err := auth.ReadGiven(t.TempDir()); err == nil {
		t.Error("ReadGiven of an empty directory: no error")
	}
	secret := "sortie_0123456789abcdefghijklmnopqrstuvwxyz"
	write("admin-1", secret)
	g, err := auth.ReadGiven(dir)
	if err != nil {
		t.Fatal(err)
	}
	st := openStore(t)
	if created, err := auth.BootstrapGiven(ctx, st, *g); err != nil || !created {
		t.Fatalf("first start: %v %v", created, err)
	}
	c, err := st.GetCredential(ctx, "admin-1")
	if err != nil || !slices.Equal(c.Roles, []string{pipeline.RoleOrganizationAdmin}) || bytes.Contains(c.SecretHash, []byte(secret)) {
		t.Fatalf("stored credential: %+v %v", c, err)
	}
	if !auth.VerifySecret(c.SecretHash, secret) {
		t.Error("the stored hash does not verify the given secret")
	}
	other := auth.Given{ClientID: "admin-2", ClientSecret: secret}
	if created, err := auth.BootstrapGiven(ctx, st, other); err != nil || created {
		t.Errorf("second start: %v %v; want nothing done", created, err)
	}
}

// TestKeyWrittenAsideFirst: a new signing key is written beside its final
// name and renamed (atomicfile), so what a crash mid-write leaves (a
// truncated dot-file) never stops the next start, and a failed write
// leaves no key file at all.
func TestKeyWrittenAsideFirst(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	if _, err := auth.LoadKeys(dir); err != nil {
		t.Fatal(err)
	}
	// What a crash during AddKey leaves.
	if err := os.WriteFile(filepath.Join(dir, ".20260301T120000Z-0badf00d.pem.1234"), []byte("-----BEGIN PRIV"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := auth.LoadKeys(dir); err != nil {
		t.Errorf("keys after a crash mid-write: %v", err)
	}
	if os.Geteuid() != 0 { // root ignores the directory's mode
		os.Chmod(dir, 0o500)
		defer os.Chmod(dir, 0o700)
		if _, err := auth.AddKey(dir, time.Now()); err == nil {
			t.Error("AddKey into a read-only folder succeeded")
		}
	}
	pems, _ := filepath.Glob(filepath.Join(dir, "*.pem"))
	if len(pems) != 1 {
		t.Errorf("key files: %v, want the first only", pems)
	}
}
