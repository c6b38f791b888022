// Package armory runs the real Armory CD-as-a-Service deployment files of
// ../shared/armory-examples (SORTIE_ARMORY_EXAMPLES) end to end: `sortie
// server` and one `sortie agent` per account the files name, as separate
// processes on the shared local cluster, the files deployed with the CLI
// exactly as written. Their analysis queries are judged by a real
// Prometheus scraping series of the cluster's real pods, their webhooks
// answered by stand-ins of GitHub, Jenkins, Slack and a command hook, their
// manifests named by URL served by a local HTTPS server, their preview
// links fetched through the server. It has no code of its own.
//
// It must not be imported, must not edit a corpus file (a run works on a
// copy, its deployment files byte for byte the corpus's), and its tests
// talk to the processes only as a user would (the CLI, the REST API, the
// cluster).
package armory
