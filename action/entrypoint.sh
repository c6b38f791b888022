#!/usr/bin/env bash
# The entry point of action.yml: what armory/cli-deploy-action's entrypoint.sh
# ran (`armory deploy start --file F [--application A] [--add-context C]
# --with-scm|--with-scm-file S [--watch]`), with Sortie. Inputs come as
# INPUT_* variables (set by action.yml), never through shell interpolation.
#
#   INPUT_PATH_TO_FILE        the deployment file; "/deploy.yml" means the
#                             workspace's deploy.yml, as Armory's Action read it
#   INPUT_APPLICATIONNAME     override of the file's application
#   INPUT_ADDCONTEXT          k=v,... context values
#   INPUT_WITHSCMFILE         a JSON file of the commit; else GITHUB_* is read
#   INPUT_WAITFORDEPLOYMENT   "true" follows the deployment to its end
#   SORTIE_BIN                the sortie binary (default: sortie on PATH)
#
# The CLI itself appends DEPLOYMENT_ID, LINK and RUN_RESULT to GITHUB_OUTPUT
# and a summary to GITHUB_STEP_SUMMARY; the step fails with its exit code
# (3: another deployment of the application is in flight).
set -euo pipefail
set -f # values are never globs

bin="${SORTIE_BIN:-sortie}"
file="${INPUT_PATH_TO_FILE:?path-to-file is required}"
if [[ "$file" == /* && -n "${GITHUB_WORKSPACE:-}" && ! -e "$file" && -e "${GITHUB_WORKSPACE}${file}" ]]; then
  file="${GITHUB_WORKSPACE}${file}"
fi

args=(deploy start --file "$file")
if [[ -n "${INPUT_APPLICATIONNAME:-}" ]]; then args+=(--application "$INPUT_APPLICATIONNAME"); fi
if [[ -n "${INPUT_ADDCONTEXT:-}" ]]; then args+=(--add-context "$INPUT_ADDCONTEXT"); fi
if [[ -n "${INPUT_WITHSCMFILE:-}" ]]; then
  args+=(--with-scm-file "$INPUT_WITHSCMFILE")
else
  args+=(--with-scm)
fi
wait="${INPUT_WAITFORDEPLOYMENT:-false}"
if [[ "${wait,,}" == "true" ]]; then args+=(--watch); fi

"$bin" version
exec "$bin" "${args[@]}"
