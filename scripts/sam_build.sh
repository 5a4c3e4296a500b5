#!/usr/bin/env bash
# `sam build --beta-features` of template.yaml: the rust-cargolambda build method runs
# `cargo lambda build --release --arm64` for each function, with the SAM CLI, cargo-lambda and zig
# from .venv (requirements-dev.txt) and the aarch64 Rust target, which it installs if it is
# missing. Output: .aws-sam/build/{SyncFunction,ReportFunction}/bootstrap, and the same
# bootstraps in target/lambda/{sync,report}/ (where `make build` puts them too).
# Extra arguments go to sam build. Nothing is sent to AWS, telemetry included.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
export SAM_CLI_TELEMETRY=0

if [ ! -x .venv/bin/sam ]; then
  echo "no SAM CLI in .venv: run 'make venv' first (it installs the one pinned in requirements-dev.txt)" >&2
  exit 1
fi
if ! grep -qx aarch64-unknown-linux-gnu <<<"$(rustup target list --installed 2>/dev/null || true)"; then
  echo "installing the aarch64-unknown-linux-gnu Rust target (template.yaml deploys arm64)"
  if ! rustup target add aarch64-unknown-linux-gnu; then
    echo "the aarch64-unknown-linux-gnu target could not be installed: sam build needs it for arm64" >&2
    exit 1
  fi
fi
sam build --beta-features "$@"
