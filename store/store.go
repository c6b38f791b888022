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
	// ErrFenced: the pipeline's lease was taken over since it was read
	// (its epoch moved on): the writer no longer owns it and must stop
	// driving it, without writing.
	ErrFenced = errors.New("fenced: the pipeline's lease is held by another replica")
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
	// Lease is who drives the pipeline while it is in flight (see Leases).
	// SavePipeline refuses, with ErrFenced, a pipeline whose Lease.Epoch
	// is not the stored one. CreatePipeline stores Lease.Owner and
	// Lease.Until as given (an empty Owner: nobody holds it) and sets
	// Lease.Epoch to 1 when Owner is set, else 0; SavePipeline writes none
	// of it.
	Lease Lease
}

// Lease is a replica's hold on an in-flight pipeline. Epoch is the fencing
// number: every takeover increases it, and a write carrying an older one
// is refused.
type Lease struct {
	// Owner is the replica's id; empty: nobody holds it.
	Owner string
	// Until is when the lease expires unless renewed.
	Until time.Time
	Epoch int64
}

// LeaseRef names a lease a replica holds: the pipeline and the epoch it
// was taken at.
type LeaseRef struct {
	Tenant, ID string
	Epoch      int64
}

// Leases share the in-flight pipelines among the replicas of one database:
// each unfinished pipeline is driven by the one replica whose lease on it
// has not expired. Times are the caller's (an injected clock), not the
// store's. A replica is live while its last ClaimLeases or RenewLeases
// plus ttl is ahead.
type Leases interface {
	// ClaimLeases records that replica is live until now+ttl and takes,
	// each with its epoch increased and until now+ttl, unfinished
	// pipelines nobody holds or whose lease expired at now, oldest first,
	// as long as the replica then holds at most its fair share:
	// ceil(unfinished / live replicas). It returns the pipelines taken,
	// with their Source, the new lease in Lease.
	ClaimLeases(ctx context.Context, replica string, now time.Time, ttl time.Duration) ([]*Pipeline, error)
	// RenewLeases records that replica is live until now+ttl and extends
	// to now+ttl each of held that replica still holds at that epoch,
	// expired or not, while the pipeline is unfinished; it returns those
	// (the others were taken over or ended).
	RenewLeases(ctx context.Context, replica string, held []LeaseRef, now time.Time, ttl time.Duration) ([]LeaseRef, error)
	// ReleaseLeases gives up the leases of held that replica still holds
	// at that epoch, so another replica may claim them at once, and marks
	// replica no longer live. A nil held releases every lease replica
	// holds: a replica starting again under the same id lets go of what
	// its previous run held, to claim it again at once.
	ReleaseLeases(ctx context.Context, replica string, held []LeaseRef) error
	// TakeLease takes the lease of one unfinished pipeline whoever holds
	// it (an action reached a replica that does not drive it): epoch
	// increased, owner replica, until now+ttl. It returns the pipeline
	// with its Source; a finished one is returned unchanged, without a
	// lease taken; an unknown one is ErrNotFound.
	TakeLease(ctx context.Context, replica, tenant, id string, now time.Time, ttl time.Duration) (*Pipeline, error)
	// ClaimWarm returns the warm versions (see Warm) whose removal is
	// replica's: those of the pipelines it owns. A finished pipeline keeps
	// the owner that finished it (leases move only unfinished ones), so
	// ClaimWarm first makes replica the owner of every finished pipeline
	// with a warm version whose owner is not live at now (died, closed,
	// released) or is nobody: of two claimers one wins. Soonest Until
	// first.
	ClaimWarm(ctx context.Context, replica string, now time.Time) ([]Warm, error)
	// FairShare is the most leases one replica claims at now:
	// ceil(unfinished pipelines / live replicas), at least one replica.
	FairShare(ctx context.Context, now time.Time) (int, error)
	// NextExpiry is the earliest time after now at which a lease another
	// replica than replica holds on an unfinished pipeline runs out, if not
	// renewed; the zero time when there is none. A replica that wakes then
	// claims what a dead one held as soon as it may.
	NextExpiry(ctx context.Context, replica string, now time.Time) (time.Time, error)
	// HandOver gives up the leases of held that replica still holds at
	// that epoch, as ReleaseLeases does, but replica stays live: it hands
	// pipelines to the other replicas, to even the shares out.
	HandOver(ctx context.Context, replica string, held []LeaseRef) error
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
	// Trace is the W3C traceparent of the pipeline's root span, when the
	// server traces: every span of the pipeline belongs to that trace,
	// across restarts.
	Trace string `json:"trace,omitempty"`
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
// Warm is a target's previous version kept warm by the pipeline that
// replaced it, to be removed at Until.
type Warm struct {
	Tenant, Pipeline, Target string
	Until                    time.Time
}

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
// AllowedHosts, when not empty, are the only hosts a request carrying the
// secret may go to (egress.MatchHost patterns).
type Secret struct {
	Tenant       string
	Name         string
	Ciphertext   []byte
	AllowedHosts []string
	UpdatedAt    time.Time
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
	// the events get their Seq. Otherwise it returns ErrFenced when the
	// stored lease epoch is not p.Lease.Epoch, ErrConflict (another
	// version), or ErrNotFound when tenant has no such pipeline. Tenant, ID, Application,
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
	// ListSecrets returns names, allowed hosts and times by name,
	// Ciphertext left empty.
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

	// Deploy windows, by tenant, scope ("tenant", "application NAME",
	// "target NAME") and name. PutWindow creates or replaces (ErrNotFound
	// for an unknown tenant); List is by scope and name; Delete of a
	// window the tenant lacks returns ErrNotFound.
	PutWindow(ctx context.Context, tenant string, w pipeline.Window) error
	ListWindows(ctx context.Context, tenant string) ([]pipeline.Window, error)
	DeleteWindow(ctx context.Context, tenant, scope, name string) error

	// Previous versions kept warm, one per tenant, pipeline and target.
	// PutWarm creates or replaces (ErrNotFound for an unknown tenant);
	// ListWarm lists every tenant's, soonest Until first; DeleteWarm of a
	// row that is gone is no error (the removal it records is done).
	PutWarm(ctx context.Context, w Warm) error
	ListWarm(ctx context.Context) ([]Warm, error)
	DeleteWarm(ctx context.Context, tenant, pipeline, target string) error

	// Freezes, one per tenant and scope. PutFreeze creates or replaces
	// (ErrNotFound for an unknown tenant; a zero At is stamped); List is
	// by scope and includes freezes whose Until has passed (the caller
	// ignores those); Delete of a scope not frozen returns ErrNotFound.
	PutFreeze(ctx context.Context, tenant string, f pipeline.Freeze) error
	ListFreezes(ctx context.Context, tenant string) ([]pipeline.Freeze, error)
	DeleteFreeze(ctx context.Context, tenant, scope string) error

	// The audit log is append-only: the store offers no way to change or
	// remove an entry. A zero At is stamped; Seq is assigned.
	AppendAudit(ctx context.Context, e AuditEntry) error
	ListAudit(ctx context.Context, tenant string, f AuditFilter) ([]AuditEntry, error)

	Notifications
	Leases

	// Token signing keys, shared by the servers on one database. Sealed is
	// the private key sealed under the master key (package auth never
	// gives the store a key in clear). PutSigningKey returns ErrConflict
	// when the id is taken; List is by id, oldest first (ids begin with
	// their creation time).
	PutSigningKey(ctx context.Context, k SigningKey) error
	ListSigningKeys(ctx context.Context) ([]SigningKey, error)
	Revocations

	Close() error
}

// SigningKey is a token signing key as the store keeps it.
type SigningKey struct {
	ID        string
	Sealed    []byte
	CreatedAt time.Time
}

// Subscription is a tenant's request to be told of some pipeline events
// (package notify names them) of an application and a target, through a
// sink. Sink is the sink's settings as JSON (package notify defines and
// validates them); like a metric provider's, it names secrets, never holds
// their values, so it may be shown.
type Subscription struct {
	Tenant string
	ID     string
	// Application and Target select pipelines; empty selects all.
	Application string
	Target      string
	Events      []string
	SinkType    string
	Sink        json.RawMessage
	CreatedBy   string
	CreatedAt   time.Time
}

// Outbox message statuses: waiting for a (next) attempt, delivered, given up.
const (
	OutboxPending = "pending"
	OutboxSent    = "sent"
	OutboxFailed  = "failed"
)

// OutboxMessage is one message owed to one subscription's sink, and the
// record of its delivery. Key is unique within a tenant: the same event
// enqueued twice for the same subscription is one message.
type OutboxMessage struct {
	Tenant       string          `json:"-"`
	ID           int64           `json:"id"`
	Key          string          `json:"-"`
	Subscription string          `json:"subscription"`
	Pipeline     string          `json:"pipeline,omitempty"`
	Kind         string          `json:"event"`
	Payload      json.RawMessage `json:"-"`
	Status       string          `json:"status"`
	Attempts     int             `json:"attempts"`
	// NextAttempt is when a pending message is due.
	NextAttempt time.Time `json:"nextAttempt,omitzero"`
	// LastError is why the last attempt failed, secrets masked.
	LastError string `json:"lastError,omitempty"`
	// Claim is the expiry of the claim ClaimOutbox gave on the message
	// (zero: unclaimed); RecordDelivery of a claimed message writes only
	// while that claim still holds.
	Claim     time.Time `json:"-"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// Notifications is the store's part for package notify: subscriptions, the
// outbox with its per-pipeline cursor, and the uses of action links.
type Notifications interface {
	// CreateSubscription returns ErrConflict when the id is taken in the
	// tenant, ErrNotFound for an unknown tenant; a zero CreatedAt is
	// stamped. List is by id. Get and Delete of an id the tenant lacks
	// return ErrNotFound. Deleting keeps the subscription's deliveries.
	CreateSubscription(ctx context.Context, s Subscription) error
	GetSubscription(ctx context.Context, tenant, id string) (*Subscription, error)
	ListSubscriptions(ctx context.Context, tenant string) ([]Subscription, error)
	DeleteSubscription(ctx context.Context, tenant, id string) error

	// NotifyBacklog returns, across tenants, the events not yet past the
	// notify cursor of their pipeline (see Enqueue), of pipelines updated
	// at or after since, in order of tenant, pipeline and Seq, at most
	// limit (0: 500).
	NotifyBacklog(ctx context.Context, since time.Time, limit int) ([]Event, error)
	// Enqueue adds msgs to the outbox (a message whose Key the tenant has
	// already is left as it is) and moves the notify cursor of tenant's
	// pipeline to seq (never back), atomically: an event is turned into
	// messages once. An empty pipeline moves no cursor. IDs are assigned;
	// a zero CreatedAt and NextAttempt are stamped; Status becomes pending.
	Enqueue(ctx context.Context, tenant, pipeline string, seq int64, msgs []OutboxMessage) error
	// ClaimOutbox claims pending messages due at now, of every tenant,
	// earliest first, at most limit (0: 100), until until: each is put off
	// to until in the same transaction, so of notifiers sharing the
	// database (several replicas) exactly one gets a message, and a claim
	// its notifier never recorded (the replica died) is due again at
	// until, to be claimed by another. The messages come back with their
	// due NextAttempt and Claim set to until. NextOutboxDue is the earliest
	// NextAttempt of any pending message, claimed or not (zero: none).
	ClaimOutbox(ctx context.Context, now, until time.Time, limit int) ([]OutboxMessage, error)
	NextOutboxDue(ctx context.Context) (time.Time, error)
	// RecordDelivery writes m's Status, Attempts, NextAttempt, LastError
	// and UpdatedAt (stamped when zero); ErrNotFound for a message the
	// tenant lacks. For a claimed message (Claim set) it writes only while
	// the claim holds (the message is pending with that claim): a claim
	// taken over since (it expired) is ErrConflict, and nothing is written.
	RecordDelivery(ctx context.Context, m OutboxMessage) error
	// ListDeliveries returns tenant's messages newest first (of one
	// subscription when it is not empty), Payload left empty, at most limit
	// (0: 100).
	ListDeliveries(ctx context.Context, tenant, subscription string, limit int) ([]OutboxMessage, error)

	// UseActionLink records that the action link nonce of tenant was used
	// at at; ErrConflict when it was used before, however many uses race.
	UseActionLink(ctx context.Context, tenant, nonce string, at time.Time) error
	// ActionLinkUsed reports whether the nonce of tenant was used.
	ActionLinkUsed(ctx context.Context, tenant, nonce string) (bool, error)
}
