#!/usr/bin/env bash
# make demo: a local Kubernetes cluster, `sortie dev` against it, and the
# sample application deployed twice: v1 (a first deployment, straight to
# 100 %), then v2 through a canary that pauses and waits for your approval.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=$PWD/bin
cache=${XDG_CACHE_HOME:-$HOME/.cache}/sortie
state=$cache/demo
addr=${SORTIE_DEMO_ADDR:-127.0.0.1:8080}
mkdir -p "$state"

kubeconfig=$("$bin/localkube" up | sed -n 's/^KUBECONFIG=//p')
[ -n "$kubeconfig" ] || { echo "demo: the local cluster did not start" >&2; exit 1; }

# One server for the demo: reuse it if it already runs.
if [ -f "$state/server.pid" ] && kill -0 "$(cat "$state/server.pid")" 2>/dev/null; then
  echo "demo: sortie dev already runs (pid $(cat "$state/server.pid")), log $state/server.log"
else
  setsid "$bin/sortie" dev --kubeconfig "$kubeconfig" --account local \
    --data-dir "$state/data" --addr "$addr" >"$state/server.log" 2>&1 </dev/null &
  echo $! >"$state/server.pid"
  echo "demo: started sortie dev (pid $!) on http://$addr, log $state/server.log"
fi
# The server answers /readyz once it listens; curl retries refused connections.
curl -fs --retry 60 --retry-connrefused --retry-delay 1 "http://$addr/readyz" >/dev/null ||
  { echo "demo: the server did not come up; see $state/server.log" >&2; exit 1; }

export XDG_CONFIG_HOME=$state/config
"$bin/sortie" login --credentials-file "$state/data/admin-credentials.json"

echo
echo "== v1: the first deployment of potato-facts goes straight to 100 %"
"$bin/sortie" deploy start -f demo/deploy.yml --add-context version=v1 --watch

echo
echo "== v2: a canary (25 %, 20 s pause, 50 %, your approval, 100 %)"
out=$("$bin/sortie" deploy start -f demo/deploy.yml --add-context version=v2 -o json)
id=$(printf '%s' "$out" | sed -n 's/.*"pipelineId": *"\([^"]*\)".*/\1/p')
cat <<MSG

Pipeline $id is running. Watch it in the console:

  http://$addr/pipelines/$id
  (log in with the client_id and client_secret of $state/data/admin-credentials.json)

or in this shell:

  export XDG_CONFIG_HOME=$state/config    # the CLI's login for the demo server
  $bin/sortie deploy watch $id            # follow it live (Ctrl-C leaves it running)
  $bin/sortie deploy approve $id          # when it waits for approval
  $bin/sortie deploy rollback $id --target local   # or roll it back

The cluster (kubectl is built with it):
  $("$bin/localkube" build)/kubectl --kubeconfig $kubeconfig -n sortie-demo get deploy,rs,pods
The API: http://$addr/api/v1/pipelines (token from sortie login)

Stop everything with: make demo-down
MSG
