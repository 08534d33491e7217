#!/usr/bin/env bash
# Thin wrapper: see compare.py --help.
set -euo pipefail
exec python3 "$(dirname "${BASH_SOURCE[0]}")/compare.py" "$@"
