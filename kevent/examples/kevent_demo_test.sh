#!/usr/bin/env bash
# Runs kevent_demo and checks its exit status and that it reports every step.
set -euo pipefail
demo="$1"
out="$("$demo")"
echo "$out"
for expect in "kevent_init(ring, 16, 0)" "[get_events] periodic timer" \
    "[get_events] one-shot timer" "[get_events] unotify" "notifier thread: KEVENT_CTL_READY -> 1" \
    "[ring] periodic timer" "REMOVE periodic timer -> 1" "kevent_demo: OK"; do
  if ! grep -qF -- "$expect" <<<"$out"; then
    echo "missing from the output: $expect" >&2
    exit 1
  fi
done
