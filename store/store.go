package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/sortie-cd/sortie/pipeline"
)

// Errors every implementation returns (wrapped) for the same conditions.
var (
	// ErrNotFound: no such row in this tenant.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the row changed since it was read (optimistic
	// concurrency), or a unique key is taken.
	ErrConflict = errors.New("conflict")
)

// DefaultTenant always exists.
const DefaultTenant = "main"

// Pipeline is one stored pipeline.
type Pipeline struct {
	Tenant      string
	ID          string
	Application string
	// Status is State.Status, kept in a column for queries.
	Status    pipeline.Status
	CreatedAt time.Time
	UpdatedAt time.Time
	// Wake mirrors the engine's wake-up time (zero: none), so the server can
	// arm its timers after a restart without reading every state.
	Wake time.Time
	// StartedBy names the principal who started it.
	StartedBy string
	// Version increases by one with every successful save; SavePipeline
	// refuses a save based on an older version.
	Version int64
	// Deployed names the targets where this pipeline's version was put in
	// place (finalize succeeded); DeployedBefore answers from it.
	Deployed []string
	State    pipeline.State
	// Source is what was submitted: the deployment file and its manifests,
	// kept for redeploys, diffs and the console.
	Source Source
}

// Source is a deployment as submitted.
type Source struct {
	// File is the deployment file's text, and FileName its name.
	FileName string `json:"fileName,omitempty"`
	File     string `json:"file,omitempty"`
	// Manifests maps each manifest's path (as the file names it; "inline/N"
	// for inline ones) to its text.
	Manifests map[string]string `json:"manifests,omitempty"`
	// Context is the context the deployment was started with.
	Context map[string]string `json:"context,omitempty"`
	// Plan is the deployment resolved per target when it started (package
	// plan, as JSON): what the executors run. Empty for pipelines stored
	// before plans were; the runner resolves those from the source.
	Plan json.RawMessage `json:"plan,omitempty"`
	// Commit is where the deployment comes from, when the CLI was told
	// (deploy start --with-scm or --with-scm-file).
	Commit *Commit `json:"commit,omitempty"`
}

// Commit is the source-control revision a deployment was started from, as
// CI reported it (Armory's --with-scm).
type Commit struct {
	Sha        string `json:"sha,omitempty"`
	Branch     string `json:"branch,omitempty"`
	Repository string `json:"repository,omitempty"`
	Actor      string `json:"actor,omitempty"`
	Server     string `json:"server,omitempty"`
	Event      string `json:"event,omitempty"`
}

// Times given to the store are kept to the nanosecond and come back in UTC;
// the store's own clock fills only zero CreatedAt, UpdatedAt and Event.At.

// Event is one entry of a pipeline's append-only log: a status change, an
// action, a command result. Seq is assigned by the store, increasing per
// pipeline from 1.
type Event struct {
	Tenant   string          `json:"-"`
	Pipeline string          `json:"pipeline"`
	Seq      int64           `json:"seq"`
	At       time.Time       `json:"at"`
	Type     string          `json:"type"`
	Data     json.RawMessage `json:"data,omitempty"`
}

// Filter selects pipelines in ListPipelines. Zero fields select all.
type Filter struct {
	Application string
	Statuses    []pipeline.Status
	// CreatedAfter and CreatedBefore bound CreatedAt (exclusive).
	CreatedAfter, CreatedBefore time.Time
	// Limit caps the result (0: 100). Results are newest first.
	Limit int
}

// Admit decides, inside the transaction that creates a pipeline, from the
// other pipelines of its tenant and application, whether it may be created.
// Returning an error aborts the creation.
type Admit func(others []pipeline.Ref) error

// Credential is a machine client credential. The secret is stored hashed.
type Credential struct {
	Tenant     string
	ClientID   string
	Name       string
	SecretHash []byte
	Roles      []string
	CreatedAt  time.Time
}

// User is a person's account in a tenant: a local account (PasswordHash
// set, an argon2id hash as package auth makes it) or one provisioned by
// single sign-on (Issuer and Subject name the identity provider's user).
// Usernames are unique within a tenant.
type User struct {
	Tenant   string
	Username string
	// Name is shown in the console and the audit log; empty means
	// Username.
	Name         string
	PasswordHash []byte
	Roles        []string
	// Issuer and Subject are the OpenID Connect provider's iss and sub of
	// a user provisioned by single sign-on; empty for a local account.
	Issuer, Subject string
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// RefreshToken is a user's refresh token as the store keeps it: ID is the
// token's public half, Hash the SHA-256 of its secret half, never the
// token itself.
type RefreshToken struct {
	ID        string
	Hash      []byte
	Tenant    string
	Username  string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// MetricProvider is a tenant's connection to a metric system that analysis
// steps query by Name. Config is the provider's settings as JSON (package
// analysis defines and validates them); it names secrets, never holds their
// values, so it may be shown.
type MetricProvider struct {
	Tenant    string
	Name      string
	Type      string
	Config    json.RawMessage
	CreatedAt time.Time
}

// Secret is a tenant's secret as the store keeps it: Ciphertext is sealed
// under the tenant's data key (package secrets), never a value in clear.
type Secret struct {
	Tenant     string
	Name       string
	Ciphertext []byte
	UpdatedAt  time.Time
}

// DataKey is a tenant's data key, wrapped by the master key MasterKeyID
// names.
type DataKey struct {
	Tenant      string
	MasterKeyID string
	Wrapped     []byte
	CreatedAt   time.Time
}

// Role is a custom role of a tenant and the grants it gives (package auth
// names them). System roles are not stored.
type Role struct {
	Tenant    string
	Name      string
	Grants    []string
	UpdatedAt time.Time
}

// AuditEntry is one line of a tenant's audit log: who (Actor, ClientID),
// when, from where (Remote), what (Action and the ids of Objects, never a
// value). Seq is assigned by the store, increasing.
type AuditEntry struct {
	Tenant   string    `json:"-"`
	Seq      int64     `json:"seq"`
	At       time.Time `json:"at"`
	Actor    string    `json:"actor"`
	ClientID string    `json:"clientId"`
	Remote   string    `json:"remote"`
	Action   string    `json:"action"`
	Objects  []string  `json:"objects"`
}

// AuditFilter selects audit entries. Zero fields select all.
type AuditFilter struct {
	// Actor matches Actor or ClientID.
	Actor  string
	Action string
	// Since and Until bound At (inclusive, exclusive).
	Since, Until time.Time
	// Limit caps the result (0: 100). Results are newest first.
	Limit int
}

// Store is the persistence contract.
type Store interface {
	// CreatePipeline stores a new pipeline with its first events. admit runs
	// in the same transaction, serialised with every other creation for the
	// same tenant and application, so two concurrent starts cannot both
	// pass a one-in-flight rule. A nil admit admits; admit's error is
	// returned as it is; admit must not call the store (it runs holding the
	// write lock). p.Version becomes 1.
	CreatePipeline(ctx context.Context, p *Pipeline, admit Admit, events []Event) error
	// SavePipeline writes p if its stored version is still p.Version, and
	// appends events, atomically; on success p.Version is incremented and
	// the events get their Seq. Otherwise it returns ErrConflict, or
	// ErrNotFound when tenant has no such pipeline. Tenant, ID, Application,
	// CreatedAt, StartedBy and Source are fixed at creation and not written
	// again.
	SavePipeline(ctx context.Context, p *Pipeline, events []Event) error
	// GetPipeline returns one pipeline of tenant.
	GetPipeline(ctx context.Context, tenant, id string) (*Pipeline, error)
	// ListPipelines returns pipelines of tenant, newest first. Their Source is
	// left empty.
	ListPipelines(ctx context.Context, tenant string, f Filter) ([]*Pipeline, error)
	// ApplicationRefs lists the pipelines of tenant and application that are
	// not terminal, for admission and for starting a queued one.
	ApplicationRefs(ctx context.Context, tenant, application string) ([]pipeline.Ref, error)
	// ResumablePipelines returns every pipeline, of any tenant, that is not
	// terminal, with its Source: what the server resumes when it starts.
	ResumablePipelines(ctx context.Context) ([]*Pipeline, error)
	// DeployedBefore reports whether application was ever deployed to target
	// in tenant: whether any pipeline's Deployed names that target.
	DeployedBefore(ctx context.Context, tenant, application, target string) (bool, error)
	// Events returns the events of a pipeline with Seq > after, in order.
	Events(ctx context.Context, tenant, pipelineID string, after int64) ([]Event, error)

	// Tenants.
	CreateTenant(ctx context.Context, name string) error
	ListTenants(ctx context.Context) ([]string, error)

	// Credentials. Client ids are unique across tenants (pipeline ids only
	// within one); GetCredential looks a client id up across tenants (the
	// token endpoint does not know the tenant yet).
	CreateCredential(ctx context.Context, c Credential) error
	GetCredential(ctx context.Context, clientID string) (*Credential, error)
	ListCredentials(ctx context.Context, tenant string) ([]Credential, error)
	DeleteCredential(ctx context.Context, tenant, clientID string) error

	// Agent bindings: an agent identifier belongs, in its tenant, to the
	// credential that first registered it. BindAgent binds agentID to
	// clientID unless it is bound already, and returns the client id it is
	// bound to (clientID, or the earlier one). Deleting the credential
	// releases its bindings. AgentBindings returns the tenant's, by agent id.
	BindAgent(ctx context.Context, tenant, agentID, clientID string, at time.Time) (string, error)
	AgentBindings(ctx context.Context, tenant string) (map[string]string, error)

	// Users, by username within a tenant. CreateUser returns ErrConflict
	// when the username is taken in the tenant, ErrNotFound for an unknown
	// tenant; zero CreatedAt and UpdatedAt are stamped. Get, Delete and
	// the Set methods of a username the tenant lacks return ErrNotFound.
	// DeleteUser and SetUserPassword delete the user's refresh tokens in
	// the same transaction (a new password ends every session). List is by
	// username.
	CreateUser(ctx context.Context, u User) error
	GetUser(ctx context.Context, tenant, username string) (*User, error)
	ListUsers(ctx context.Context, tenant string) ([]User, error)
	DeleteUser(ctx context.Context, tenant, username string) error
	SetUserRoles(ctx context.Context, tenant, username string, roles []string) error
	SetUserPassword(ctx context.Context, tenant, username string, hash []byte) error

	// Refresh tokens, by ID across tenants. CreateRefreshToken returns
	// ErrNotFound when the user does not exist. ConsumeRefreshToken
	// deletes the token and returns it, atomically, so a token is used
	// once however many requests race with it (ErrNotFound for an unknown
	// or already used ID). RevokeRefreshTokens deletes every token of a
	// user (none is not an error).
	CreateRefreshToken(ctx context.Context, t RefreshToken) error
	ConsumeRefreshToken(ctx context.Context, id string) (*RefreshToken, error)
	RevokeRefreshTokens(ctx context.Context, tenant, username string) error

	// Metric providers, by name within a tenant. CreateMetricProvider
	// returns ErrConflict when the name is taken in the tenant (another
	// tenant may use it), ErrNotFound for an unknown tenant; a zero
	// CreatedAt is stamped with the store's clock. Get and Delete of a name
	// the tenant does not have return ErrNotFound. List is by name.
	CreateMetricProvider(ctx context.Context, p MetricProvider) error
	GetMetricProvider(ctx context.Context, tenant, name string) (*MetricProvider, error)
	ListMetricProviders(ctx context.Context, tenant string) ([]MetricProvider, error)
	DeleteMetricProvider(ctx context.Context, tenant, name string) error

	// SetCredentialRoles replaces the roles of a credential of tenant
	// (ErrNotFound for another tenant's client id).
	SetCredentialRoles(ctx context.Context, tenant, clientID string, roles []string) error

	// Secrets, by name within a tenant. PutSecret creates or replaces
	// (ErrNotFound for an unknown tenant); a zero UpdatedAt is stamped.
	// ListSecrets returns names and times by name, Ciphertext left empty.
	// Get and Delete of a name the tenant lacks return ErrNotFound.
	PutSecret(ctx context.Context, s Secret) error
	GetSecret(ctx context.Context, tenant, name string) (*Secret, error)
	ListSecrets(ctx context.Context, tenant string) ([]Secret, error)
	DeleteSecret(ctx context.Context, tenant, name string) error

	// Data keys, one per tenant. CreateDataKey returns ErrConflict when the
	// tenant has one (another writer won: read it). ReplaceDataKey rewrites
	// the key of k.Tenant only if it is still wrapped as old says
	// (MasterKeyID and Wrapped), else ErrConflict. ListDataKeys is every
	// tenant's, for a master key rotation.
	CreateDataKey(ctx context.Context, k DataKey) error
	GetDataKey(ctx context.Context, tenant string) (*DataKey, error)
	ListDataKeys(ctx context.Context) ([]DataKey, error)
	ReplaceDataKey(ctx context.Context, old, k DataKey) error

	// Custom roles, by name within a tenant. PutRole creates or replaces
	// (ErrNotFound for an unknown tenant); List is by name.
	PutRole(ctx context.Context, r Role) error
	ListRoles(ctx context.Context, tenant string) ([]Role, error)
	DeleteRole(ctx context.Context, tenant, name string) error

	// The audit log is append-only: the store offers no way to change or
	// remove an entry. A zero At is stamped; Seq is assigned.
	AppendAudit(ctx context.Context, e AuditEntry) error
	ListAudit(ctx context.Context, tenant string, f AuditFilter) ([]AuditEntry, error)

	Close() error
}
