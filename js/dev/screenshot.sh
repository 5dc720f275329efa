#!/usr/bin/env bash
# Serves the repository root on 127.0.0.1 and screenshots the harness with headless Chromium.
#   js/dev/screenshot.sh OUT.png [QUERY] [WIDTHxHEIGHT] [SCALE] [BUDGET_MS]
# e.g. js/dev/screenshot.sh /tmp/x.png 'pick=0.3,-0.2' 1000x700 2
# Build first (npm run build in js/). With DUMP=1 it prints the DOM instead of a screenshot.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${1:-/tmp/harness.png}"
query="${2:-}"
size="${3:-1000x700}"
scale="${4:-1}"
budget="${5:-8000}"
port="${PORT:-8765}"
chromium="${CHROMIUM:-$(command -v chromium || command -v chromium-browser)}"

python3 -m http.server "$port" --bind 127.0.0.1 --directory "$root" >/dev/null 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT
for _ in $(seq 50); do
  (echo >/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break
  sleep 0.1
done

url="http://127.0.0.1:$port/js/dev/harness.html?$query"
flags=(--headless --no-sandbox --disable-gpu --disable-background-networking --hide-scrollbars
       --window-size="${size/x/,}" --force-device-scale-factor="$scale"
       --virtual-time-budget="$budget")
if [[ "${DUMP:-0}" == 1 ]]; then
  "$chromium" "${flags[@]}" --dump-dom "$url" 2>/dev/null
else
  "$chromium" "${flags[@]}" --screenshot="$out" "$url" 2>/dev/null
  echo "$out"
fi
