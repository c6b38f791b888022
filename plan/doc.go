// Package plan is what one deployment does in each of its targets,
// resolved once when the deployment starts: the target's manifests
// rendered, its traffic management, the webhooks and analysis queries its
// steps use, its context, and the armory.*/sortie.* variables. The runner
// resolves it from the parsed file ([Resolve]) and stores it with the
// pipeline; every executor (the cluster executor, on the server or in an
// agent, and the gates) reads the command's Target from the job and never
// parses the deployment file again.
//
// It also holds the request that starts a deployment ([StartRequest]), the
// body of POST /api/v1/pipelines, so that the API, its clients and the
// console link neither the runner nor the parser's callers.
//
// [Target.Vars] is the one place the armory.*/sortie.* variables are
// built; manifests, webhooks, queries and messages all render with it.
//
// It must not talk to a cluster or the network, read files, or import the
// runner, an executor or a Kubernetes package; it imports only the standard
// library, deployfile and the vocabulary of pipeline and store.
package plan
