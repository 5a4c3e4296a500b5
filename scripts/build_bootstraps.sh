#!/usr/bin/env bash
# Builds the release bootstraps of both functions with cargo-lambda (zig links them for Lambda's
# glibc): arm64, as the template deploys, when the aarch64 target is installed or installable;
# otherwise x86_64, and it says so. Output: target/lambda/{sync,report}/bootstrap.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"   # cargo-lambda and zig from requirements-dev.txt

arch=arm64
if ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
  if ! rustup target add aarch64-unknown-linux-gnu >/dev/null 2>&1; then
    arch=x86-64
  fi
fi
if [ "$arch" = arm64 ]; then
  echo "building arm64 bootstraps (as template.yaml deploys)"
else
  echo "the aarch64 target cannot be installed here: building x86_64 bootstraps instead" \
       "(deploy them with Architectures: [x86_64])"
fi
cargo lambda build --release "--$arch" --bin sync --bin report
for f in sync report; do
  file "target/lambda/$f/bootstrap" 2>/dev/null || ls -l "target/lambda/$f/bootstrap"
done
