// Context settings, the binary sources and the TLS variant.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';

import { Annotations, Match } from 'aws-cdk-lib/assertions';

import { hostInCidr, readSettings } from '../lib/settings';
import { allowedResources, brokers, resources, roleStatements, setting, synth } from './helpers';

const ctx = (map: Record<string, unknown>) => ({ tryGetContext: (k: string) => map[k] });

describe('settings', () => {
  it('computes fixed addresses inside a subnet, refusing the ones AWS keeps', () => {
    const cases: [string, number, string | null][] = [
      ['10.40.3.0/24', 10, '10.40.3.10'],
      ['10.40.3.0/24', 4, '10.40.3.4'],
      ['10.40.3.0/24', 254, '10.40.3.254'],
      ['10.0.0.0/20', 300, '10.0.1.44'],
      ['10.40.3.0/24', 3, null],
      ['10.40.3.0/24', 255, null],
      ['not a cidr', 10, null],
    ];
    for (const [cidr, offset, want] of cases) {
      if (want === null) assert.throws(() => hostInCidr(cidr, offset), `${cidr} +${offset}`);
      else assert.equal(hostInCidr(cidr, offset), want, `${cidr} +${offset}`);
    }
  });

  it('rejects values that would break the template or the boot script', () => {
    const bad: Record<string, unknown>[] = [
      { account: '12345' },
      { azs: 'us-east-1a,us-east-1b' },
      { azs: 'us-east-1a,us-east-1a,us-east-1b' },
      { region: 'eu-west-1', azs: 'us-east-1a,us-east-1b,us-east-1c' },
      { arch: 'sparc' },
      { brokerVpcCidr: '10.40.0.0/20' },
      { advertisedHost: 'kafka' },
      { scramUser: 'a,b' },
      { fjordBinary: '/tmp/fjord', fjordBinaryUrl: 's3://b/fjord' },
      { fjordBinaryUrl: "https://example.com/fjord'; rm -rf /" },
      { fjordBinaryUrl: 'ftp://example.com/fjord' },
      { fjordBinaryUrl: 'https://example.com/fjord', fjordBinarySha256: 'abc' },
      { kafkaToolsUrl: 's3://b/kafka.tgz' },
      { clientCidrs: '10.0.0.0/33' },
      { natGateways: '0' },
    ];
    for (const map of bad) assert.throws(() => readSettings(ctx(map)), JSON.stringify(map));
    assert.equal(readSettings(ctx({})).binary.kind, 'none');
  });

  it('warns at synth, and the boot script stops, when no binary is given', () => {
    const { stacks, cluster } = synth();
    Annotations.fromStack(stacks.cluster!).hasWarning('*', Match.stringLikeRegexp('No fjord binary given'));
    for (const b of brokers(cluster)) {
      const stop = b.userData.indexOf('no fjord binary was configured');
      assert.ok(stop > 0 && stop < b.userData.indexOf('attach_eni'), 'it stops before taking the ENI');
    }
  });

  it('uploads -c fjordBinary as an asset the brokers may read', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fjord-aws-test-'));
    const file = path.join(dir, 'fjord');
    fs.writeFileSync(file, '#!/bin/sh\necho fjord test\n');
    try {
      const { stacks, cluster } = synth({ fjordBinary: file });
      assert.equal(Annotations.fromStack(stacks.cluster!).findWarning('*', Match.stringLikeRegexp('No fjord binary')).length, 0);
      // The bootstrap bucket of the environment, and the file's hash as its key.
      const views = brokers(cluster);
      for (const b of views) {
        const cp = /\nretry 300 aws s3 cp --only-show-errors 's3:\/\/([^/]+)\/([0-9a-f]{64}\.\w*)' \/usr\/local\/bin\/fjord\.download\n/.exec(
          b.userData,
        );
        assert.ok(cp !== null, 'the boot script copies the asset');
        assert.match(cp[1], /cdk-hnb659fds-assets-111111111111-us-east-1/);
        const objects = allowedResources(roleStatements(cluster, b.roleId), 's3:GetObject*');
        assert.ok(
          objects.includes(`arn:aws:s3:::${cp[1]}/*`),
          `${b.roleId} reads the asset bucket: ${objects.join(' ')}`,
        );
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('downloads -c fjordBinaryUrl and checks -c fjordBinarySha256', () => {
    const sha = 'a'.repeat(64);
    const { cluster } = synth({ fjordBinaryUrl: 'https://example.com/fjord-x86_64', fjordBinarySha256: sha });
    for (const b of brokers(cluster)) {
      assert.match(b.userData, /\nretry 300 curl -fsSL -o \/usr\/local\/bin\/fjord\.download 'https:\/\/example\.com\/fjord-x86_64'\n/);
      assert.match(b.userData, new RegExp(`\\necho '${sha}  /usr/local/bin/fjord.download' \\| sha256sum -c -\\n`));
      assert.match(b.userData, /\ninstall -m 0755 \/usr\/local\/bin\/fjord\.download \/usr\/local\/bin\/fjord\n/);
    }
    const { cluster: s3 } = synth({ fjordBinaryUrl: 's3://my-bucket/releases/fjord' });
    for (const b of brokers(s3)) {
      assert.deepEqual(
        allowedResources(roleStatements(s3, b.roleId), 's3:GetObject'),
        ['arn:{Ref:AWS::Partition}:s3:::my-bucket/releases/fjord'],
        `${b.roleId} reads the object`,
      );
    }
  });

  it('serves SASL_SSL with the PEM of -c externalTlsSecretArn', () => {
    const arn = 'arn:aws:secretsmanager:us-east-1:111111111111:secret:fjord-tls-AbCdEf';
    const { cluster } = synth({ externalTlsSecretArn: arn });
    for (const b of brokers(cluster)) {
      assert.equal(setting(b.properties, 'listener.security.protocol.map'), 'INTERNAL:PLAINTEXT,EXTERNAL:SASL_SSL,CONTROLLER:PLAINTEXT');
      assert.equal(setting(b.properties, 'listener.name.external.ssl.keystore.type'), 'PEM');
      assert.equal(setting(b.properties, 'listener.name.external.ssl.keystore.location'), '/etc/fjord/external.pem');
      assert.ok(b.userData.includes(`get-secret-value --secret-id '${arn}'`));
      const readable = allowedResources(roleStatements(cluster, b.roleId), 'secretsmanager:GetSecretValue');
      assert.ok(readable.includes(arn), `${b.roleId} reads the TLS secret: ${readable.join(' ')}`);
    }
  });

  it('advertises -c advertisedHost and names both private zones after it', () => {
    const { cluster, client } = synth({ advertisedHost: 'kafka.dev.example.internal' });
    for (const b of brokers(cluster)) {
      assert.match(setting(b.properties, 'advertised.listeners')!, /EXTERNAL:\/\/kafka\.dev\.example\.internal:844[345]$/);
    }
    for (const t of [cluster, client]) {
      const [[, zone]] = resources(t, 'AWS::Route53::HostedZone');
      assert.equal(zone.Properties.Name, 'kafka.dev.example.internal.');
    }
  });
});
