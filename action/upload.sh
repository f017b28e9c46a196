#!/usr/bin/env bash
# tracelink's GitHub Action (action.yml runs this): uploads a job's coverage and test
# reports (and line records: git-ai notes from refs/notes/ai, Agent Trace files) to tracelink, writes tracelink's summary to $GITHUB_STEP_SUMMARY, sets the
# `trace-id` output and exports TRACEPARENT for later steps.
#
# Inputs come as INPUT_URL, INPUT_FILES, INPUT_FLAGS, INPUT_TOKEN, INPUT_AUDIENCE,
# INPUT_GIT_AI_NOTES and INPUT_FAIL_ON_ERROR; the run's context from the GITHUB_* variables and the event payload
# ($GITHUB_EVENT_PATH). Needs bash, curl and sha256sum (or shasum); reads JSON with jq,
# else python3. Unless fail-on-error is true, a failed upload is a warning and the step
# succeeds: tracelink being down never fails the build.
set -uo pipefail

fail_on_error=${INPUT_FAIL_ON_ERROR:-false}
fail_on_error=${fail_on_error,,}

# A workflow command's message: % and line breaks escaped.
command_text() {
  local s=$1
  s=${s//'%'/'%25'}
  s=${s//$'\r'/'%0D'}
  s=${s//$'\n'/'%0A'}
  printf '%s' "$s"
}

warn() { echo "::warning title=tracelink::$(command_text "$*")"; }

# Ends the step: an error when fail-on-error is true, else a warning and success.
fail() {
  if [[ $fail_on_error == true ]]; then
    echo "::error title=tracelink::$(command_text "$*")"
    exit 1
  fi
  warn "$* (the step succeeds: set fail-on-error: true to fail it)"
  exit 0
}

# A JSON string literal.
json_str() {
  local s=$1
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\n'/\\n}
  s=${s//$'\r'/\\r}
  s=${s//$'\t'/\\t}
  s=$(printf '%s' "$s" | tr -d '\000-\010\013\014\016-\037')
  printf '"%s"' "$s"
}

# A field of a JSON document (a jq path of object keys, e.g. .pull_request.head.sha);
# empty when absent or null. $2 is a file.
json_field() {
  local path=$1 file=$2
  if command -v jq >/dev/null 2>&1; then
    jq -r "$path // empty" "$file" 2>/dev/null
  elif command -v python3 >/dev/null 2>&1; then
    python3 - "$path" "$file" <<'PY' 2>/dev/null
import json, sys
v = json.load(open(sys.argv[2], encoding="utf-8"))
for k in sys.argv[1].strip(".").split("."):
    v = v.get(k) if isinstance(v, dict) else None
if v is not None:
    sys.stdout.write(v if isinstance(v, str) else json.dumps(v))
PY
  else
    return 1
  fi
}

# Credentials into $token: the upload token, else the run's OIDC token.
credentials() {
  local sep='?'
  token=${INPUT_TOKEN:-}
  if [[ -z $token ]]; then
    if [[ -z ${ACTIONS_ID_TOKEN_REQUEST_URL:-} || -z ${ACTIONS_ID_TOKEN_REQUEST_TOKEN:-} ]]; then
      fail "no OIDC token available: grant the job 'permissions: id-token: write', or set the token input"
    fi
    [[ $ACTIONS_ID_TOKEN_REQUEST_URL == *\?* ]] && sep='&'
    printf 'Authorization: bearer %s\n' "$ACTIONS_ID_TOKEN_REQUEST_TOKEN" >"$tmp/oidc-headers"
    if ! curl -sS --fail --max-time 30 -H @"$tmp/oidc-headers" -o "$tmp/oidc.json" \
      "${ACTIONS_ID_TOKEN_REQUEST_URL}${sep}audience=${INPUT_AUDIENCE:-tracelink}"; then
      fail "requesting the OIDC token failed"
    fi
    token=$(json_field .value "$tmp/oidc.json") || token=""
    [[ -n $token ]] || fail "the OIDC token response holds no value"
  fi
  echo "::add-mask::$token"
}

url=${INPUT_URL:-}
[[ -n $url ]] || fail "the url input is required"
url=${url%/}

[[ -n ${GITHUB_REPOSITORY:-} ]] || fail "GITHUB_REPOSITORY is not set: run this in GitHub Actions"
[[ ${GITHUB_RUN_ID:-} =~ ^[0-9]+$ ]] || fail "GITHUB_RUN_ID is not set"
run_attempt=${GITHUB_RUN_ATTEMPT:-1}

# The run's trace ID, derived as the OpenTelemetry Collector's GitHub receiver does:
# the first 32 hex digits of sha256("{run_id}{run_attempt}t"). Set before the upload, so
# later steps join the run's trace even when tracelink cannot be reached.
if command -v sha256sum >/dev/null 2>&1; then
  trace_id=$(printf '%s%st' "$GITHUB_RUN_ID" "$run_attempt" | sha256sum | cut -c1-32)
else
  trace_id=$(printf '%s%st' "$GITHUB_RUN_ID" "$run_attempt" | shasum -a 256 | cut -c1-32)
fi
span_id=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
[[ -n ${GITHUB_OUTPUT:-} ]] && echo "trace-id=$trace_id" >>"$GITHUB_OUTPUT"
[[ -n ${GITHUB_ENV:-} ]] && echo "TRACEPARENT=00-$trace_id-$span_id-01" >>"$GITHUB_ENV"
echo "tracelink: trace $trace_id (run $GITHUB_RUN_ID attempt $run_attempt)"

# The commit: for pull requests the PR head, not the merge commit GitHub checks out.
sha=${GITHUB_SHA:-}
pr_number=""
event=${GITHUB_EVENT_PATH:-}
if [[ -n $event && -f $event ]]; then
  head_sha=$(json_field .pull_request.head.sha "$event") || head_sha=""
  [[ -n $head_sha ]] && sha=$head_sha
  pr_number=$(json_field .pull_request.number "$event") || pr_number=""
fi
# A workflow_run workflow (how fork pull requests upload): the run's head commit, and the
# pull request it names (the pr-number input, which a fork's run passes on as an artifact).
if [[ ${GITHUB_EVENT_NAME:-} == workflow_run && -n $event && -f $event ]]; then
  run_head=$(json_field .workflow_run.head_sha "$event") || run_head=""
  [[ -n $run_head ]] && sha=$run_head
fi
[[ -n ${INPUT_PR_NUMBER:-} ]] && pr_number=$INPUT_PR_NUMBER
if [[ -z $pr_number && ${GITHUB_REF:-} =~ ^refs/pull/([0-9]+)/ ]]; then
  pr_number=${BASH_REMATCH[1]}
fi
[[ $pr_number =~ ^[0-9]+$ ]] || pr_number=""
[[ $sha =~ ^[0-9a-fA-F]{40}$ ]] || fail "no commit SHA (GITHUB_SHA or the event's pull_request.head.sha)"

tmp=$(mktemp -d) || fail "cannot create a temporary directory"
trap 'rm -rf "$tmp"' EXIT

# Deployment mode: report this deployment (of $sha to the environment) and stop.
mode=${INPUT_MODE:-upload}
mode=${mode,,}
if [[ $mode == deployment ]]; then
  environment=${INPUT_ENVIRONMENT:-}
  [[ -n $environment ]] || fail "the environment input is required in deployment mode"
  status=${INPUT_STATUS:-success}
  status=${status,,}
  external_id=${INPUT_EXTERNAL_ID:-$GITHUB_RUN_ID-$run_attempt-$environment}
  now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  started=${INPUT_STARTED_AT:-}
  finished="null"
  case $status in
    success | failure | error) finished=$(json_str "$now") ;;
  esac
  [[ -n $started ]] || started=$now
  credentials
  printf '{"repository":%s,"environment":%s,"sha":%s,"status":%s,"external_id":%s,"source":"github-actions","ref":%s,"started_at":%s,"finished_at":%s}\n' \
    "$(json_str "$GITHUB_REPOSITORY")" "$(json_str "$environment")" "$(json_str "$sha")" \
    "$(json_str "$status")" "$(json_str "$external_id")" "$(json_str "${GITHUB_REF:-}")" \
    "$(json_str "$started")" "$finished" >"$tmp/deployment.json"
  printf 'Authorization: Bearer %s\n' "$token" >"$tmp/headers"
  code=$(curl -sS --max-time 60 --retry 2 --retry-delay 1 --retry-connrefused \
    -H @"$tmp/headers" -H 'Content-Type: application/json' --data-binary @"$tmp/deployment.json" \
    -o "$tmp/response.json" -w '%{http_code}' "$url/api/v1/deployments") ||
    fail "tracelink at $url could not be reached"
  case $code in
    200 | 202)
      id=$(json_field .id "$tmp/response.json") || id=""
      echo "tracelink: deployment of $sha to $environment reported ($status, id $id)"
      if [[ -n ${GITHUB_STEP_SUMMARY:-} ]]; then
        printf '### tracelink: deployment\n\n`%s` to **%s**: %s (tracelink id %s)\n' \
          "${sha:0:7}" "$environment" "$status" "$id" >>"$GITHUB_STEP_SUMMARY"
      fi
      exit 0
      ;;
    *)
      reason=$(json_field .error "$tmp/response.json") || reason=""
      [[ -n $reason ]] || reason=$(head -c 500 "$tmp/response.json" 2>/dev/null)
      fail "tracelink refused the deployment (HTTP $code): $reason"
      ;;
  esac
fi
[[ $mode == upload ]] || fail "unknown mode $mode (upload or deployment)"

# The report files.
shopt -s nullglob globstar
files=()
files_input=${INPUT_FILES:-}
if [[ -n ${files_input//[[:space:],]/} ]]; then
  IFS=$' \t\n,' read -r -d '' -a patterns <<<"$files_input" || true
  for pattern in "${patterns[@]}"; do
    if [[ $pattern != *[\*\?\[]* ]]; then
      # A file named literally: say so when it is missing.
      if [[ -f $pattern ]]; then
        files+=("$pattern")
      elif [[ -e $pattern ]]; then
        warn "$pattern is not a file"
      else
        warn "$pattern does not exist"
      fi
      continue
    fi
    # shellcheck disable=SC2206 # the pattern is meant to be expanded as a glob
    matched=($pattern)
    ((${#matched[@]})) || warn "no file matches $pattern"
    for f in "${matched[@]}"; do
      [[ -f $f ]] && files+=("$f")
    done
  done
  ((${#files[@]})) || fail "none of the files input exists or matches a file: $files_input"
else
  while IFS= read -r f; do
    files+=("$f")
  done < <(find . \( -name node_modules -o -name .git \) -prune -o -type f \
    \( -name lcov.info -o -name coverage.xml -o -name cobertura.xml -o -name jacoco.xml \
    -o -name coverage.out -o -name 'junit*.xml' -o -name 'TEST-*.xml' \
    -o -path ./.agent-trace/traces.jsonl \) -print | sort)
fi

# git-ai's line records: the notes under refs/notes/ai (actions/checkout does not fetch
# them) of the pull request's commits (base..head; with a shallow checkout, the head
# commit only) or of the pushed commits (before..after), each sent as git-ai/<sha>.txt
# behind a first line `git-ai-note <sha>`. No notes ref on origin: nothing, silently.
git_ai=${INPUT_GIT_AI_NOTES:-true}
if [[ ${git_ai,,} == true ]] && command -v git >/dev/null 2>&1 &&
  git rev-parse --git-dir >/dev/null 2>&1 &&
  git ls-remote --exit-code origin refs/notes/ai >/dev/null 2>&1; then
  if git fetch --quiet --no-tags origin '+refs/notes/ai:refs/notes/ai' 2>/dev/null; then
    base=""
    if [[ -n $event && -f $event ]]; then
      base=$(json_field .pull_request.base.sha "$event") || base=""
      [[ -n $base ]] || base=$(json_field .before "$event") || base=""
    fi
    commits=()
    if [[ $base =~ ^[0-9a-fA-F]{40}$ && ! $base =~ ^0+$ ]]; then
      while IFS= read -r c; do
        commits+=("$c")
      done < <(git rev-list --max-count=250 "$base..$sha" 2>/dev/null)
    fi
    ((${#commits[@]})) || commits=("$sha")
    mkdir -p "$tmp/git-ai" || fail "cannot create a temporary directory"
    notes=0
    for c in "${commits[@]}"; do
      # tracelink takes at most 100 files in one upload.
      if ((${#files[@]} >= 100)); then
        warn "more git-ai notes than fit in one upload (100 files): the rest are not sent"
        break
      fi
      if git notes --ref=ai show "$c" >"$tmp/git-ai/note" 2>/dev/null; then
        { printf 'git-ai-note %s\n' "$c"; cat "$tmp/git-ai/note"; } >"$tmp/git-ai/$c.txt"
        files+=("$tmp/git-ai/$c.txt")
        notes=$((notes + 1))
      fi
    done
    rm -f "$tmp/git-ai/note"
    echo "tracelink: $notes git-ai note(s) among ${#commits[@]} commit(s)"
  else
    warn "origin has refs/notes/ai but fetching it failed: no git-ai line records sent"
  fi
fi
((${#files[@]})) || fail "no report files found in the workspace (set the files input)"

credentials

# The context part.
flags_json=""
IFS=$' \t\n,' read -r -d '' -a flag_list <<<"${INPUT_FLAGS:-}" || true
for f in "${flag_list[@]}"; do
  flags_json+="${flags_json:+,}$(json_str "$f")"
done
{
  printf '{"repository":%s,"sha":%s,"ref":%s,' \
    "$(json_str "$GITHUB_REPOSITORY")" "$(json_str "$sha")" "$(json_str "${GITHUB_REF:-}")"
  printf '"run_id":%s,"run_attempt":%s,"job":%s,' \
    "$(json_str "$GITHUB_RUN_ID")" "$(json_str "$run_attempt")" "$(json_str "${GITHUB_JOB:-job}")"
  printf '"pr_number":%s,"flags":[%s],"workspace":%s}\n' \
    "${pr_number:-null}" "$flags_json" "$(json_str "${GITHUB_WORKSPACE:-}")"
} >"$tmp/context.json"

# curl -F takes quoted names; quotes and backslashes inside are escaped.
form_quote() {
  local s=$1
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  printf '"%s"' "$s"
}

printf 'Authorization: Bearer %s\n' "$token" >"$tmp/headers"
args=(-sS --max-time 300 --retry 2 --retry-delay 1 --retry-connrefused
  -H @"$tmp/headers" -o "$tmp/response.json" -w '%{http_code}'
  -F "context=@$(form_quote "$tmp/context.json");type=application/json")
for f in "${files[@]}"; do
  name=${f#./}
  [[ $f == "$tmp"/git-ai/* ]] && name="git-ai/${f##*/}"
  args+=(-F "file=@$(form_quote "$f");filename=$(form_quote "$name")")
done
echo "tracelink: uploading ${#files[@]} file(s) for $GITHUB_REPOSITORY@$sha: ${files[*]}"
code=$(curl "${args[@]}" "$url/api/v1/ci/uploads") || fail "tracelink at $url could not be reached"

case $code in
  200 | 201)
    summary=$(json_field .summary "$tmp/response.json") || summary=""
    if [[ -n $summary && -n ${GITHUB_STEP_SUMMARY:-} ]]; then
      printf '%s\n' "$summary" >>"$GITHUB_STEP_SUMMARY"
    fi
    # The pull request's report as it stands, after the upload.
    pr_summary=$(json_field .pull_request_summary "$tmp/response.json") || pr_summary=""
    if [[ -n $pr_summary && -n ${GITHUB_STEP_SUMMARY:-} ]]; then
      printf '\n%s\n' "$pr_summary" >>"$GITHUB_STEP_SUMMARY"
    fi
    [[ $code == 200 ]] && echo "tracelink: already stored (a repeated upload)"
    echo "tracelink: uploaded"
    ;;
  *)
    reason=$(json_field .error "$tmp/response.json") || reason=""
    [[ -n $reason ]] || reason=$(head -c 500 "$tmp/response.json" 2>/dev/null)
    fail "tracelink refused the upload (HTTP $code): $reason"
    ;;
esac
