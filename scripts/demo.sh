#!/usr/bin/env bash
# The demo: simulate a month of a multi-office VPN estate with the headline breach in it,
# hunt it (ingest, detect, group the alerts into incidents, write the report) and score the
# alerts against the simulator's ground truth.
# Usage: scripts/demo.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-demo-out}"
vs=".venv/bin/vpnsentry"
rm -rf "$out"
mkdir -p "$out"
echo "== simulate: 30 days, 300 users, scenario vpn-appliance-breach"
$vs simulate --out "$out/sim" --days 30 --users 300 --scenario vpn-appliance-breach --seed 2019
echo
echo "== hunt: ingest, detect (site inventory written by the simulator), correlate, report"
$vs hunt "$out/sim/logs" --store "$out/store" --sites "$out/sim/sites.yaml" --out "$out/report" \
  || [ $? -eq 1 ]   # 1: the simulator's deliberately garbled lines were quarantined
echo
echo "== what is in the store"
$vs stats --store "$out/store"
echo
echo "== how the alerts score against the simulator's ground truth"
$vs evaluate --store "$out/store" --truth "$out/sim/ground_truth.json"
echo
echo "Report: $out/report/report.html (one self-contained file: open it in any browser)"
echo "        $out/report/{alerts,incidents}.ndjson, $out/report/stix-bundle.json"
echo "Logs: $out/sim/logs   Store: $out/store   Ground truth: $out/sim/ground_truth.json"
