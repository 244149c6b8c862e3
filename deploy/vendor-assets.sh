#!/usr/bin/env bash
# Copy the pinned front-end libraries (installed by `npm ci` from gateway/package-lock.json)
# to where the gateway serves them.  Never committed: gateway/static/vendor is generated.
set -euo pipefail
cd "$(dirname "$0")/../gateway"
mkdir -p static/vendor
cp node_modules/sortablejs/Sortable.min.js static/vendor/
cp node_modules/chart.js/dist/chart.umd.min.js static/vendor/chart.min.js
cp node_modules/tom-select/dist/js/tom-select.complete.min.js static/vendor/tom-select.min.js
cp node_modules/tom-select/dist/css/tom-select.min.css static/vendor/tom-select.min.css
