// Command provider runs the example OpenID Connect provider of
// github.com/zitadel/oidc/v3 (its example/server packages: the OP library,
// the example's in-memory storage, login and device pages) on loopback for
// Sortie's single sign-on tests. It is the example server's main with three
// changes the tests need, since that main registers fixed clients and users
// and puts no groups in its tokens:
//
//   - clients and users come from a JSON file (-config): web clients (code
//     flow with PKCE, for the console) and device clients (RFC 8628, for
//     the CLI through Sortie);
//   - each user's groups are added to the ID token and userinfo, under the
//     claim "groups";
//   - it listens on -addr (port 0: any) and prints "issuer URL" on
//     standard output once it serves.
//
// Nothing of it ships; tests build it once from the module proxy with
// package auth/sso/ssotest.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"golang.org/x/text/language"
)

// config is the -config file.
type config struct {
	Clients []struct {
		ID, Secret string
		// Kind is "web" (authorization code, PKCE, client secret) or
		// "device" (device authorization grant, client secret).
		Kind         string
		RedirectURIs []string
	}
	Users []struct {
		ID, Username, Password string
		FirstName, LastName    string
		Email                  string
		Groups                 []string
	}
}

type users struct {
	byID   map[string]*storage.User
	groups map[string][]string
}

// GetUserByID also finds a user by username: the example's device pages
// record the username as the subject of an approved device code.
func (u users) GetUserByID(id string) *storage.User {
	if x, ok := u.byID[id]; ok {
		return x
	}
	return u.GetUserByUsername(id)
}
func (u users) GetUserByUsername(name string) *storage.User {
	for _, x := range u.byID {
		if x.Username == name {
			return x
		}
	}
	return nil
}
func (u users) ExampleClientID() string { return storage.ServiceUserID }

// withGroups is the example storage, adding the groups claim wherever it
// fills user info (ID tokens and the userinfo endpoint).
type withGroups struct {
	*storage.Storage
	users users
}

func (s withGroups) SetUserinfoFromScopes(ctx context.Context, ui *oidc.UserInfo, userID, clientID string, scopes []string) error {
	if err := s.Storage.SetUserinfoFromScopes(ctx, ui, userID, clientID, scopes); err != nil {
		return err
	}
	s.addGroups(ui, userID, scopes)
	return nil
}

func (s withGroups) SetUserinfoFromToken(ctx context.Context, ui *oidc.UserInfo, tokenID, subject, origin string) error {
	if err := s.Storage.SetUserinfoFromToken(ctx, ui, tokenID, subject, origin); err != nil {
		return err
	}
	s.addGroups(ui, subject, []string{oidc.ScopeOpenID})
	return nil
}

func (s withGroups) addGroups(ui *oidc.UserInfo, userID string, scopes []string) {
	if slices.Contains(scopes, oidc.ScopeOpenID) {
		if u := s.users.GetUserByID(userID); u != nil {
			userID = u.ID
		}
		if g, ok := s.users.groups[userID]; ok {
			ui.AppendClaims("groups", g)
		}
		if u := s.users.byID[userID]; u != nil && ui.PreferredUsername == "" {
			ui.PreferredUsername = u.Username
		}
	}
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	cfgPath := flag.String("config", "", "clients and users (JSON)")
	flag.Parse()
	b, err := os.ReadFile(*cfgPath)
	if err != nil {
		log.Fatal(err)
	}
	var cfg config
	if err := json.Unmarshal(b, &cfg); err != nil {
		log.Fatalf("%s: %v", *cfgPath, err)
	}
	us := users{byID: map[string]*storage.User{}, groups: map[string][]string{}}
	for _, u := range cfg.Users {
		us.byID[u.ID] = &storage.User{ID: u.ID, Username: u.Username, Password: u.Password, FirstName: u.FirstName, LastName: u.LastName,
			Email: u.Email, EmailVerified: true, PreferredLanguage: language.English}
		us.groups[u.ID] = u.Groups
	}
	for _, c := range cfg.Clients {
		switch c.Kind {
		case "web":
			storage.RegisterClients(storage.WebClient(c.ID, c.Secret, c.RedirectURIs...))
		case "device":
			storage.RegisterClients(storage.DeviceClient(c.ID, c.Secret))
		default:
			log.Fatalf("client %s: kind %q: want web or device", c.ID, c.Kind)
		}
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	issuer := fmt.Sprintf("http://%s/", ln.Addr())
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	router := exampleop.SetupServer(issuer, withGroups{storage.NewStorage(us), us}, logger, false)
	fmt.Println("issuer", issuer)
	log.Fatal(http.Serve(ln, router))
}
