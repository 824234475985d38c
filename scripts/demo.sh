#!/usr/bin/env bash
# The main job, one command: the S3 reader pod of deploy/, end to end, on a local
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
unexpected() { printf '\033[1;31mUNEXPECTED: %s\033[0m\n' "$*" >&2; exit 1; }

# expect CODE NEEDLE... -- CMD...: runs CMD, shows its output (stderr
# included), and stops the demo unless CMD exits with CODE and its output
# contains every NEEDLE. A step expected to succeed must also print no error
# and no warning.
expect() {
  local want="$1" needles=() out code=0
  shift
  while [[ "$1" != "--" ]]; do needles+=("$1"); shift; done
  shift
  local shown="${*//$reader/s3_reader}"
  printf '  $ %s\n' "${shown//$work/\$WORK}"
  out="$("$@" 2>&1)" || code=$?
  printf '%s\n' "$out" | fold -s -w 110 | sed 's/^/    /'
  [[ "$code" == "$want" ]] || unexpected "exit code $code, expected $want"
  local needle
  for needle in "${needles[@]}"; do
    grep -qF -- "$needle" <<<"$out" || unexpected "the output does not contain \"$needle\""
  done
  if [[ "$want" == 0 ]] && grep -qE '(^|[^a-z])(error|WARN)' <<<"$out"; then
    unexpected "a successful step printed an error or a warning"
  fi
}

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
echo "   The scenario of deploy/terraform is replayed into moto: role my-app-pod-identity-role"
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
expect 0 ":assumed-role/my-app-pod-identity-role/" "credentials: pod-identity" -- "$reader" --whoami

say "4. The app lists and reads its bucket"
expect 0 "s3://my-app-bucket/hello.txt" -- "$reader" ls s3://my-app-bucket
expect 0 "hello from EKS Pod Identity" -- "$reader" get s3://my-app-bucket/hello.txt

say "5. Least privilege: another bucket is denied (this failure is expected)"
expect 1 "error: AccessDenied: " "(credentials: pod-identity)" -- "$reader" ls s3://other-bucket

say "6. A pod without Pod Identity is refused rather than silently given the node role (expected)"
expect 2 "the fallback policy is Deny" "node's IAM role" -- \
  env -u AWS_CONTAINER_CREDENTIALS_FULL_URI -u AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE \
  "$reader" ls s3://my-app-bucket

say "7. The same binary on a laptop: a profile with a developer's keys, no Pod Identity"
echo "   (IAM user laptop-dev, allowed to read my-app-bucket, created in moto for this step)"
laptop="$work/laptop"
mkdir -p "$laptop/.aws"
python3 - "$AWS_ENDPOINT_URL" "$laptop/.aws/credentials" <<'PY'
# moto's IAM query API, with enforcement paused while the user is created.
import json, sys, urllib.parse, urllib.request, xml.etree.ElementTree as ET
endpoint, path = sys.argv[1], sys.argv[2]
def post(url, body, headers):
    req = urllib.request.Request(url, data=body.encode(), headers=headers, method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.read().decode()
def auth(on):
    post(endpoint + "/moto-api/reset-auth", "0" if on else "inf", {"Content-Type": "text/plain"})
def iam(**params):
    params["Version"] = "2010-05-08"
    # The credential scope routes the request to moto's IAM.
    scope = "Credential=AKIDEXAMPLE/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0"
    return post(endpoint + "/", urllib.parse.urlencode(params),
                {"Content-Type": "application/x-www-form-urlencoded",
                 "Authorization": "AWS4-HMAC-SHA256 " + scope})
policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
          "Action": ["s3:ListBucket", "s3:GetObject"],
          "Resource": ["arn:aws:s3:::my-app-bucket", "arn:aws:s3:::my-app-bucket/*"]}]}
auth(False)
try:
    iam(Action="CreateUser", UserName="laptop-dev")
    iam(Action="PutUserPolicy", UserName="laptop-dev", PolicyName="read-my-app-bucket",
        PolicyDocument=json.dumps(policy))
    key = ET.fromstring(iam(Action="CreateAccessKey", UserName="laptop-dev"))
finally:
    auth(True)
find = lambda tag: next(e.text for e in key.iter() if e.tag.endswith(tag))
with open(path, "w") as f:
    f.write("[laptop]\naws_access_key_id = %s\naws_secret_access_key = %s\n"
            % (find("AccessKeyId"), find("SecretAccessKey")))
PY
echo "   ~/.aws/credentials has a [laptop] profile; AWS_PROFILE=laptop; no Pod Identity env"
laptop_env=(env -u AWS_CONTAINER_CREDENTIALS_FULL_URI -u AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE
  -u KUBERNETES_SERVICE_HOST HOME="$laptop" AWS_PROFILE=laptop AWS_EC2_METADATA_DISABLED=true)
expect 0 ":user/laptop-dev" "credentials: profile:laptop" -- "${laptop_env[@]}" "$reader" --whoami
expect 0 "s3://my-app-bucket/hello.txt" -- "${laptop_env[@]}" "$reader" ls s3://my-app-bucket

say "Done. The stack is being torn down."
