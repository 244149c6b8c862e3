#!/usr/bin/env bash
# The browser tests drive Debian's Chromium through Playwright (executable_path), never a
# browser that Playwright downloads.
set -euo pipefail
if ! command -v chromium >/dev/null 2>&1; then
  echo "installing Debian's chromium"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium >/dev/null
fi
