#!/usr/bin/env bash
# The demo: simulate a month of a multi-office VPN estate with the headline breach in it,
# ingest it, and show what is in the store. Usage: scripts/demo.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-demo-out}"
vs=".venv/bin/vpnsentry"
rm -rf "$out"
mkdir -p "$out"
echo "== simulate: 30 days, 300 users, scenario vpn-appliance-breach"
$vs simulate --out "$out/sim" --days 30 --users 300 --scenario vpn-appliance-breach --seed 2019
echo
echo "== ingest"
$vs ingest "$out/sim/logs" --store "$out/store" || [ $? -eq 1 ]   # 1: garbled lines quarantined
echo
echo "== what is in the store"
$vs stats --store "$out/store"
q() { echo; echo "-- $1"; $vs query --store "$out/store" "$2"; }
q "VPN logins by gateway and outcome" \
  'SELECT "observer.name" AS gateway, "event.outcome" AS outcome, count(*) AS events
   FROM events WHERE "event.category" = $$authentication$$ GROUP BY ALL ORDER BY ALL'
q "admin and configuration events on the gateways" \
  'SELECT "@timestamp", "observer.name", "event.action", "user.name", "source.ip", message
   FROM events WHERE "event.category" = $$configuration$$ OR "event.code" IN
   ($$0100032001$$, $$0100032002$$, $$111008$$, $$111010$$) ORDER BY 1 LIMIT 15'
q "largest uploads to the Internet (bytes out per destination)" \
  'SELECT "destination.ip", count(*) AS flows, sum("source.bytes") AS bytes_out
   FROM flows WHERE NOT ("destination.ip" LIKE $$10.%$$ OR "destination.ip" LIKE $$192.168.%$$
   OR "destination.ip" LIKE $$172.%$$) GROUP BY 1 ORDER BY bytes_out DESC LIMIT 10'
echo
echo "Logs: $out/sim/logs   Store: $out/store   Ground truth: $out/sim/ground_truth.json"
