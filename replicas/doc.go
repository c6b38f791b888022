// Package replicas is what lets several `sortie server` replicas share one
// PostgreSQL database (package store/postgres): the routing of agents'
// commands and the feed of other replicas' events.
//
// # What it provides
//
// A Node per server. As the runner's executor for agents' accounts, it
// writes each command for its agent (agent_commands) and waits, woken by
// LISTEN/NOTIFY, for its reports and result, which the replica holding the
// agent's stream (this one or another) writes there; it then deletes the
// command. Each replica records the agent streams it holds (agent_streams,
// refreshed every RecordEvery) and delivers, through its agent.Hub, every
// unanswered command of an agent connected to it: when the command is
// written, and when the agent connects (so a command whose replica died is
// delivered again by the replica the agent reconnects to). The agent runs a
// command id once, so a repeat attaches to the running execution or gets
// the kept result: a command runs once however many replicas deliver it.
// Relay is the HTTP relay through an agent (webhooks, metric providers,
// previews) wherever its stream is: through this server's hub when the
// stream is here, else sealed (Options.Sealer) into agent_relays for the
// replica holding it, which claims the call (it is sent once), relays it
// and writes back the sealed answer.
// Feed gives the runner a note for every batch of events any replica saved
// (a trigger on events notifies sortie_events); the runner reads the
// events past what it published itself.
//
// # What it must not do
//
// It decides nothing of a pipeline (the runner and the engine do), holds no
// pipeline's lease (the runner's ownership does), never polls for what a
// notification tells, keeps nothing in memory that the database does not
// hold too (a replica that dies loses no command), never logs a job's
// contents (they carry the target's manifests) nor a relayed call's (its
// headers and body may carry secrets, and are stored only sealed).
package replicas
