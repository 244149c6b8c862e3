#!/usr/bin/env bash
# The IMAP polling tests read mail from a real IMAP server: Debian's Dovecot, which each
# test starts itself (own config, free port, unprivileged); the system service stays off.
set -euo pipefail
if ! command -v dovecot >/dev/null 2>&1 && [ ! -x /usr/sbin/dovecot ]; then
  echo "installing dovecot-imapd"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq dovecot-imapd >/dev/null
  # The package starts its own daemon where an init system runs: the tests need none.
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active -q dovecot 2>/dev/null; then
    systemctl disable --now dovecot >/dev/null 2>&1 || true
  fi
fi
