// Writes what each broker's boot script would write, taken from the
// synthesized template, for smoke.sh to run on this machine:
//   node build/tools/extract-boot.js OUTDIR [key=value ...]
// makes OUTDIR/broker-N/{user-data.sh,server.properties,boot.env,lib.sh,fjord-scram-user}.

import * as fs from 'node:fs';
import * as path from 'node:path';

import { brokers, fileIn, setting, synth } from '../test/helpers';

const [outdir, ...pairs] = process.argv.slice(2);
if (outdir === undefined) {
  console.error('usage: node build/tools/extract-boot.js OUTDIR [key=value ...]');
  process.exit(2);
}
const context = Object.fromEntries(pairs.map((p) => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)]));
const files: Record<string, string> = {
  'server.properties': '/etc/fjord/server.properties',
  'boot.env': '/etc/fjord/boot.env',
  'lib.sh': '/usr/local/lib/fjord/lib.sh',
  'fjord-scram-user': '/usr/local/sbin/fjord-scram-user',
};
for (const b of brokers(synth(context).cluster)) {
  const dir = path.join(outdir, `broker-${setting(b.properties, 'node.id')}`);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'user-data.sh'), b.userData);
  for (const [name, target] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), `${fileIn(b.userData, target)}\n`);
  fs.writeFileSync(path.join(dir, 'az'), `${b.az}\n`);
}
