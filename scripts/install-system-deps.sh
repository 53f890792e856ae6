#!/usr/bin/env bash
# Install the Debian packages that tests start for real, when any is missing
# (nfdump, softflowd; chromium and its WebDriver for tests/report/test_html_chromium.py).
# Needs root (CI runs as root) or sudo; does nothing when everything is present.
set -euo pipefail
need=()
command -v nfdump    >/dev/null 2>&1 || need+=(nfdump)
command -v softflowd >/dev/null 2>&1 || need+=(softflowd)
command -v chromium  >/dev/null 2>&1 || need+=(chromium)         # the HTML report's browser test
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
[ ${#need[@]} -eq 0 ] && exit 0
echo "installing system packages: ${need[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
