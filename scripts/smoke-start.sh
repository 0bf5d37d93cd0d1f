#!/usr/bin/env bash
# Runs what `npm start` runs (the daemon in the foreground on examples/town), waits until it
# started, sends SIGINT (Ctrl-C) and expects a clean exit. Removes the example's state after.
set -euo pipefail
cd "$(dirname "$0")/../examples/town"
log=$(mktemp)
node --conditions=@belfry/source --import tsx ../../packages/cli/src/bin.ts daemon run --config belfry.yaml --memory-if-no-tmux >"$log" 2>&1 &
pid=$!
for _ in $(seq 1 150); do
  if grep -q "started: pid" "$log"; then break; fi
  if ! kill -0 "$pid" 2>/dev/null; then cat "$log"; echo "the daemon exited early" >&2; exit 1; fi
  sleep 0.2
done
grep -q "started: pid" "$log" || { cat "$log"; echo "the daemon did not start" >&2; kill -9 "$pid"; exit 1; }
kill -INT "$pid"
status=0
wait "$pid" || status=$?
cat "$log"
rm -rf .belfry
tmux -L belfry-example-town kill-server 2>/dev/null || true
if [ "$status" -ne 0 ]; then echo "npm start: the daemon exited with $status on SIGINT" >&2; exit 1; fi
echo "npm start: started, and stopped cleanly on SIGINT"
