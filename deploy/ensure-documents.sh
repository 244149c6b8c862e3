#!/usr/bin/env bash
# Documents are rendered to PDF by WeasyPrint, which needs Pango and fonts with Cyrillic
# (DejaVu); the end-to-end tests read PDFs back with pdftotext (poppler-utils).
set -euo pipefail
missing=()
for pkg in libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core poppler-utils; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
