#!/usr/bin/env bash
# Browser tests drive Debian's Chromium through Playwright (playwright's own browser
# download is not needed). Installs it when missing; needs root or sudo.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then exit 0; fi
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
if command -v apt-get >/dev/null 2>&1; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
else
  echo "warning: no apt-get; install Chromium at /usr/bin/chromium (or set DIVWEIGHTS_CHROMIUM) for the browser tests" >&2
fi
