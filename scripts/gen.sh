#!/usr/bin/env bash
# Regenerates completions/ and man/ from the CLI definition.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p completions man
RTMPTOOL_UPDATE_GENERATED=1 cargo test --quiet --test generated
git status --short completions man
