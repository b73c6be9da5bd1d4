#!/usr/bin/env bash
# Client-side CPU cost of one Cognito SRP login: en-core-auth, the aws-cognito-srp crate and
# pycognito, measured in one go, with the ratios.
#
#   EN_CORE_AUTH_PYTHON=/path/to/venv/bin/python benches/run_srp.sh [criterion args...]
#
# The Python must have tests/peers/requirements.txt installed (pycognito pinned). Without
# EN_CORE_AUTH_PYTHON the pycognito row is skipped. All figures are CPU time of the measuring
# thread/process, medians, in milliseconds.
set -euo pipefail

cd "$(dirname "$0")/.."
target_dir="${CARGO_TARGET_DIR:-target}"

cargo bench --features testing --bench srp_login -- "$@" | tee /dev/stderr | grep -E '^srp (first|second) login in a fresh process' >"$target_dir/srp_table_build.txt" || true

pycognito_line=""
if [[ -n "${EN_CORE_AUTH_PYTHON:-}" ]]; then
    pycognito_line="$("$EN_CORE_AUTH_PYTHON" benches/peers/srp_pycognito.py 40 5)"
    echo "$pycognito_line"
else
    echo "pycognito: skipped (set EN_CORE_AUTH_PYTHON to a venv with tests/peers/requirements.txt)"
fi

python3 - "$target_dir/criterion" "$pycognito_line" "$target_dir/srp_table_build.txt" <<'EOF'
import json, os, re, sys

root, pycognito_line, table_file = sys.argv[1], sys.argv[2], sys.argv[3]

def median_ms(group, bench):
    path = os.path.join(root, group, bench, "new", "estimates.json")
    with open(path) as f:
        return json.load(f)["median"]["point_estimate"] / 1e6

ours = median_ms("srp_login", "en-core-auth")
first = None
if os.path.exists(table_file):
    m = re.search(r"srp first login in a fresh process: ([0-9.]+) ms CPU", open(table_file).read())
    first = float(m.group(1)) if m else None
rows = [("en-core-auth", ours), ("aws-cognito-srp 0.2.6", median_ms("srp_login", "aws-cognito-srp"))]
if pycognito_line:
    m = re.search(r"^(pycognito \S+) login: ([0-9.]+) ms", pycognito_line)
    rows.append((m.group(1), float(m.group(2))))

print()
print("One Cognito SRP login, client-side CPU (median):")
print(f"{'implementation':<24} {'ms':>9} {'x en-core-auth':>15} {'x our first login':>18}")
for name, ms in rows:
    first_ratio = f"{ms / first:>18.1f}" if first else ""
    print(f"{name:<24} {ms:>9.3f} {ms / ours:>15.1f} {first_ratio}")
modpow = median_ms("srp_g_pow_a", "num-bigint-modpow-576-bit")
comb = median_ms("srp_g_pow_a", "en-core-auth-pow_g-576-bit")
print()
print(f"g^a, 576-bit a: num-bigint modpow {modpow:.3f} ms, pow_g comb {comb:.3f} ms ({modpow / comb:.1f}x)")
if os.path.exists(table_file):
    print(open(table_file).read().strip())
EOF
