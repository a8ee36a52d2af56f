#!/usr/bin/env bash
# Regenerates docs/cli.md from each command's --help (run after changing a flag).
set -euo pipefail
cd "$(dirname "$0")/.."
{
  echo '# CLI reference'
  echo
  echo 'Generated from each command'"'"'s `--help` (`npx kinkless <command> --help`) by scripts/gen-cli-doc.sh.'
  for cmd in "" doctor train attack eval "study kink" "reproduce sat" merge bench profile export; do
    echo
    echo "## kinkless $cmd"
    echo
    echo '```'
    # shellcheck disable=SC2086
    node bin/kinkless.mjs $cmd --help 2>/dev/null
    echo '```'
  done
} > docs/cli.md.tmp
mv docs/cli.md.tmp docs/cli.md
