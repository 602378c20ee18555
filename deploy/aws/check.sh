#!/usr/bin/env bash
# Checks the AWS CDK app (deploy/aws/README.md, "Checks"): installs the
# pinned packages from package-lock.json (npm ci, into deploy/aws/node_modules),
# synthesizes both stacks with the pinned cdk CLI and its CloudFormation
# validator, and runs the template tests (node --test). Needs Node 20 or
# later and npm; no AWS credentials, and no network but the npm registry:
# the account, region and AZs come from cdk.json's context, so nothing is
# looked up. Usage:
#   bash deploy/aws/check.sh
set -euo pipefail
cd "$(dirname "$0")"
start=$SECONDS

node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "deploy/aws: Node 20 or later is needed, this is $(node --version)" >&2
  exit 1
fi

# The cdk CLI asks npm for newer versions, reports telemetry and fetches
# notices unless told not to; the AWS SDK in it would probe the instance
# metadata service for credentials it does not need for a synth.
export CDK_DISABLE_VERSION_CHECK=1
export CDK_DISABLE_CLI_TELEMETRY=1
export AWS_EC2_METADATA_DISABLED=true

npm ci --no-audit --no-fund --loglevel=error
echo "deploy/aws: npm ci done after $((SECONDS - start)) s"

rm -rf cdk.out
npx --no-install cdk synth --no-notices --no-version-reporting --quiet
# The validator's findings are warnings on the console; an error or a
# violation in its report fails the check.
# shellcheck disable=SC2016 # JavaScript, not shell
node -e '
  const r = require("./cdk.out/validation-report.json");
  const bad = r.pluginReports.filter((p) => p.conclusion !== "success" || p.violations.length > 0);
  for (const p of bad) console.error(JSON.stringify(p, null, 2));
  if (bad.length > 0) process.exit(1);
  console.log(`deploy/aws: ${r.pluginReports.map((p) => p.pluginName).join(", ")}: no violations`);
'
for stack in FjordCluster FjordClient; do
  test -s "cdk.out/$stack.template.json" || { echo "deploy/aws: no template for $stack" >&2; exit 1; }
done

npm test --silent
echo "deploy/aws: checks passed in $((SECONDS - start)) s"
