// Package deployfile reads Sortie deployment files: the YAML dialect of
// Armory CD-as-a-Service (`version: v1`, `kind: kubernetes`) that Sortie
// accepts unchanged.
//
// It provides:
//
//   - a typed model of the whole file ([File]) with the position of every
//     element an error may point at, and JSON tags because the model is what
//     the CLI sends to the server;
//   - parsing and strict validation ([Parse], [Load]) that report every
//     problem at once as file:line:col messages written for a person, with a
//     suggestion when a name looks like a typo of an allowed one;
//   - resolution and parsing of the Kubernetes manifests a file names (by
//     path, directory or inline);
//   - the `{{armory.*}}` / `{{sortie.*}}`, `{{context.*}}` and `{{secrets.*}}`
//     variable templating ([Render], [Variables]);
//   - a plan of what a deployment would do ([NewPlan]) and its text form,
//     with the deploy windows a target's constraints.deployWindows give it
//     (a Sortie extension, checked here as the engine would check it);
//   - the JSON Schema of the file ([Schema]), generated from the Go types.
//
// It must not touch the network or a cluster, and it never sees the value of
// a secret: `{{secrets.NAME}}` references are validated and collected, and
// resolved by the server. The only I/O is reading the deployment file and the
// manifest files it names from the local file system; a manifest named by an
// http(s) URL is read only through Options.Fetch, which the caller supplies
// (the CLI's fetcher at deploy start, the server's lookup of the text the CLI
// sent).
package deployfile
