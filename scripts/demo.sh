#!/usr/bin/env bash
# The main job, one command: the blog's S3 reader pod, end to end, on a local
# stack. moto plays S3 + STS + IAM (it checks SigV4 signatures, session tokens
# and role policies); a fake EKS Pod Identity Agent mints real moto
# credentials for the pod's service account.
#
# Creates .venv with moto when absent, builds what it runs, and tears
# everything down on exit, failure or Ctrl-C. Re-runnable.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"

say() { printf '\n\033[1m%s\033[0m\n' "$*"; }
run() { printf '  $ %s\n' "$*"; "$@" 2>&1 | sed 's/^/    /'; return "${PIPESTATUS[0]}"; }

work="$(mktemp -d "${TMPDIR:-/tmp}/eks-pod-identity-demo.XXXXXX")"
agent_pid=""
cleanup() {
  if [[ -n "$agent_pid" ]] && kill -0 "$agent_pid" 2>/dev/null; then
    kill -TERM "$agent_pid" 2>/dev/null || true
    wait "$agent_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "0. Preparing: moto in .venv, building s3_reader and the local agent"
scripts/ensure-moto.sh >/dev/null
cargo build --quiet --example s3_reader
cargo build --quiet -p eks-pod-identity-testkit --bin pod-identity-local-agent
target="${CARGO_TARGET_DIR:-$repo/target}"
reader="$target/debug/examples/s3_reader"

say "1. Starting the local AWS stand-in (moto) and the Pod Identity Agent"
echo "   The Terraform of the blog is replayed into moto: role my-app-pod-identity-role"
echo "   (s3:GetObject/s3:ListBucket on my-app-bucket only), a node-role, two buckets,"
echo "   and the association my-app-namespace/my-app-sa -> my-app-pod-identity-role."
"$target/debug/pod-identity-local-agent" --with-moto --lifetime 15m \
  --write-token "$work/eks-pod-identity-token" >"$work/agent.env" 2>"$work/agent.log" &
agent_pid=$!
for _ in $(seq 1 300); do
  grep -qx READY "$work/agent.env" 2>/dev/null && break
  kill -0 "$agent_pid" 2>/dev/null || { cat "$work/agent.log" >&2; echo "local agent failed to start" >&2; exit 1; }
  sleep 0.1
done
grep -qx READY "$work/agent.env" || { cat "$work/agent.log" >&2; echo "local agent did not become ready" >&2; exit 1; }
while IFS='=' read -r key value; do
  [[ "$key" == READY || -z "$key" ]] && continue
  export "$key=$value"
done <"$work/agent.env"

say "2. What EKS injects into the pod"
echo "   AWS_CONTAINER_CREDENTIALS_FULL_URI=$AWS_CONTAINER_CREDENTIALS_FULL_URI"
echo "   AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=$AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"
echo "   (a projected service-account JWT, audience pods.eks.amazonaws.com; its claims:)"
python3 - "$AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE" <<'PY' | sed 's/^/     /'
import base64, json, sys
payload = open(sys.argv[1]).read().strip().split(".")[1]
claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
print(json.dumps({k: claims[k] for k in ("aud", "sub", "exp") if k in claims}))
PY
export KUBERNETES_SERVICE_HOST=10.100.0.1 HOME="$work"

say "3. Who am I? The pod's credentials come from the agent, signed by STS (moto)"
run "$reader" --whoami

say "4. The app lists and reads its bucket"
run "$reader" ls s3://my-app-bucket
run "$reader" get s3://my-app-bucket/hello.txt

say "5. Least privilege: another bucket is denied (this failure is expected)"
if run "$reader" ls s3://other-bucket; then
  echo "UNEXPECTED: other-bucket was readable" >&2; exit 1
fi

say "6. A pod without Pod Identity is refused rather than silently given the node role"
if env -u AWS_CONTAINER_CREDENTIALS_FULL_URI -u AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE \
  "$reader" ls s3://my-app-bucket 2>&1 | fold -s -w 100 | sed 's/^/    /'; then
  echo "UNEXPECTED: no error without Pod Identity" >&2; exit 1
fi

say "Done. The stack is being torn down."
