#!/usr/bin/env bash
# Install the Debian packages that tests start for real, when any is missing
# (nfdump, softflowd; openvpn, rsyslog, iproute2, openssl for the live-mode lab in tests/live;
# chromium and its WebDriver for tests/report/test_html_chromium.py).
# Needs root (CI runs as root) or sudo; does nothing when everything is present.
set -euo pipefail
need=()
command -v nfdump    >/dev/null 2>&1 || need+=(nfdump)
command -v softflowd >/dev/null 2>&1 || need+=(softflowd)
command -v openvpn   >/dev/null 2>&1 || need+=(openvpn)          # tests/live: the real gateway
command -v rsyslogd  >/dev/null 2>&1 || need+=(rsyslog)          # tests/live: forwards its log
command -v ip        >/dev/null 2>&1 || need+=(iproute2)         # tests/live: network namespaces
command -v openssl   >/dev/null 2>&1 || need+=(openssl)          # tests/live: the lab's PKI
command -v chromium  >/dev/null 2>&1 || need+=(chromium)         # the HTML report's browser test
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
[ ${#need[@]} -eq 0 ] && exit 0
echo "installing system packages: ${need[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
