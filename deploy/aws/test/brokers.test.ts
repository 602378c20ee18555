// The three brokers: one per AZ, each with its own fixed address, volume,
// node id and AZ, and a boot script that bash accepts.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';

import { brokers, fileIn, inCidr, ref, resources, setting, synth, text } from './helpers';

describe('brokers', () => {
  const { app, cluster } = synth();
  const views = brokers(cluster);
  const enis = Object.fromEntries(resources(cluster, 'AWS::EC2::NetworkInterface'));
  const volumes = Object.fromEntries(resources(cluster, 'AWS::EC2::Volume'));
  const env = (b: (typeof views)[number], key: string) => setting(b.userData, key)?.replace(/^'|'$/g, '');

  it('are three groups of exactly one instance, in three subnets of three distinct AZs', () => {
    assert.equal(views.length, 3);
    for (const b of views) {
      const g = cluster.findResources('AWS::AutoScaling::AutoScalingGroup')[b.groupId];
      assert.equal(g.Properties.MinSize, '1', b.groupId);
      assert.equal(g.Properties.MaxSize, '1', b.groupId);
      // A deploy must not replace all three at once (README: rolling the brokers).
      assert.equal(g.UpdatePolicy?.AutoScalingRollingUpdate, undefined, `${b.groupId} has no rolling update`);
      assert.equal(g.UpdatePolicy?.AutoScalingReplacingUpdate, undefined, `${b.groupId} has no replacing update`);
    }
    assert.equal(new Set(views.map((b) => b.subnetId)).size, 3);
    assert.deepEqual(views.map((b) => b.az).sort(), ['us-east-1a', 'us-east-1b', 'us-east-1c']);
  });

  it('have node ids 1, 2, 3 and each refuses to boot outside its own AZ', () => {
    assert.deepEqual(views.map((b) => setting(b.properties, 'node.id')).sort(), ['1', '2', '3']);
    for (const b of views) {
      assert.equal(env(b, 'NODE_ID'), setting(b.properties, 'node.id'));
      assert.equal(env(b, 'EXPECTED_AZ'), b.az, `${b.groupId} checks the AZ of its subnet`);
      assert.match(b.userData, /\nif \[ "\$AZ" != "\$EXPECTED_AZ" \]; then .*exit 1; fi\n/);
    }
  });

  it("take broker.rack from the instance's AZ id (IMDS), not from its AZ name", () => {
    for (const b of views) {
      assert.equal(setting(b.properties, 'broker.rack'), '$AZ_ID');
      assert.match(b.userData, /\nAZ_ID=\$\(imds placement\/availability-zone-id\)\n/);
      // An unquoted heredoc, so $AZ_ID is expanded when the file is written.
      assert.match(b.userData, /cat > \/etc\/fjord\/server\.properties <<FJORD_EOF\n/);
      assert.ok(b.userData.indexOf('AZ_ID=$(imds') < b.userData.indexOf('broker.rack='), 'read before use');
    }
  });

  it('each own a fixed-address ENI and a data volume in their subnet and AZ', () => {
    const seen = new Set<string>();
    for (const b of views) {
      const eniId = /^\{Ref:(\w+)\}$/.exec(env(b, 'ENI_ID') ?? '')?.[1];
      const volumeId = /^\{Ref:(\w+)\}$/.exec(env(b, 'VOLUME_ID') ?? '')?.[1];
      assert.ok(eniId !== undefined && enis[eniId] !== undefined, `${b.groupId}: ENI_ID names an ENI`);
      assert.ok(volumeId !== undefined && volumes[volumeId] !== undefined, `${b.groupId}: VOLUME_ID names a volume`);
      seen.add(eniId).add(volumeId);
      const eni = enis[eniId].Properties;
      assert.equal(ref(eni.SubnetId), b.subnetId);
      assert.equal(env(b, 'BROKER_IP'), eni.PrivateIpAddress);
      assert.ok(inCidr(eni.PrivateIpAddress, b.subnetCidr), `${eni.PrivateIpAddress} in ${b.subnetCidr}`);
      assert.equal(volumes[volumeId].Properties.AvailabilityZone, b.az);
      assert.equal(volumes[volumeId].DeletionPolicy, 'Snapshot');
      assert.equal(volumes[volumeId].Properties.Encrypted, true);
    }
    assert.equal(seen.size, 6, 'no ENI or volume is shared');
  });

  it('list the same three voters, at their ENI addresses, and bind every listener there', () => {
    const ips = views.map((b) => env(b, 'BROKER_IP')!);
    const voters = new Set(views.map((b) => setting(b.properties, 'controller.quorum.voters')));
    assert.equal(voters.size, 1, 'one voters list');
    const [list] = voters;
    const parsed = list!.split(',').map((v) => /^(\d)@([\d.]+):9093$/.exec(v)!.slice(1));
    for (const b of views) {
      const id = setting(b.properties, 'node.id');
      const ip = env(b, 'BROKER_IP');
      assert.deepEqual(
        parsed.find(([n]) => n === id),
        [id, ip],
        `voter ${id} is at broker ${id}'s address`,
      );
      assert.equal(setting(b.properties, 'listeners'), `INTERNAL://${ip}:9092,EXTERNAL://${ip}:9094,CONTROLLER://${ip}:9093`);
      assert.equal(setting(b.properties, 'process.roles'), 'broker,controller');
      assert.equal(setting(b.properties, 'inter.broker.listener.name'), 'INTERNAL');
      assert.equal(setting(b.properties, 'controller.listener.names'), 'CONTROLLER');
      assert.equal(setting(b.properties, 'metrics.listener'), '0.0.0.0:11001');
      assert.equal(setting(b.properties, 'tracing.format'), 'json');
    }
    assert.deepEqual(parsed.map(([, ip]) => ip).sort(), [...ips].sort());
  });

  it('serve clients with SCRAM-SHA-512 on EXTERNAL (SASL_PLAINTEXT without a TLS secret)', () => {
    for (const b of views) {
      assert.equal(
        setting(b.properties, 'listener.security.protocol.map'),
        'INTERNAL:PLAINTEXT,EXTERNAL:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT',
      );
      assert.equal(setting(b.properties, 'listener.name.external.sasl.enabled.mechanisms'), 'SCRAM-SHA-512');
      assert.equal(setting(b.properties, 'listener.name.external.ssl.keystore.location'), undefined);
    }
  });

  it('run on AL2023 from the SSM parameter, IMDSv2 only', () => {
    const params = cluster.toJSON().Parameters;
    for (const b of views) {
      const data = b.launchTemplate.Properties.LaunchTemplateData;
      assert.equal(data.MetadataOptions.HttpTokens, 'required');
      const param = params[ref(data.ImageId)];
      assert.equal(param.Default, '/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64');
      assert.equal(data.InstanceType, 'm7i.large');
    }
  });

  it('have boot scripts that bash parses', () => {
    for (const b of views) {
      const run = spawnSync('bash', ['-n'], { input: b.userData, encoding: 'utf8' });
      assert.equal(run.status, 0, `${b.groupId}: ${run.stderr}`);
      assert.ok(b.userData.startsWith('#!/bin/bash\nset -euo pipefail\n'));
    }
  });

  const shellcheck = spawnSync('shellcheck', ['--version']).status === 0;
  it('have boot scripts that shellcheck passes', { skip: shellcheck ? false : 'shellcheck is not installed' }, () => {
    // As deployed: with a binary (without one the script stops early on
    // purpose, and the rest is unreachable), and with TLS for its extra steps.
    const deployed = synth({
      fjordBinaryUrl: 's3://releases/fjord',
      externalTlsSecretArn: 'arn:aws:secretsmanager:us-east-1:111111111111:secret:fjord-tls-AbCdEf',
    });
    for (const b of brokers(deployed.cluster)) {
      // SC1091: the files it sources are written by the script itself.
      const run = spawnSync('shellcheck', ['-s', 'bash', '-e', 'SC1091', '-'], { input: b.userData, encoding: 'utf8' });
      assert.equal(run.status, 0, `${b.groupId}:\n${run.stdout}${run.stderr}`);
      const scram = fileIn(b.userData, '/usr/local/sbin/fjord-scram-user');
      const again = spawnSync('shellcheck', ['-s', 'bash', '-e', 'SC1091', '-'], { input: scram, encoding: 'utf8' });
      assert.equal(again.status, 0, `${b.groupId} fjord-scram-user:\n${again.stdout}${again.stderr}`);
    }
  });

  it('synthesize with no context lookup left for the CLI to do', () => {
    assert.equal(app.synth().manifest.missing, undefined);
  });

  it('use the AZs of -c azs, with no lookup, in another region', () => {
    const { app: other, cluster: t } = synth({ account: '123456789012', region: 'eu-west-1', azs: 'eu-west-1a,eu-west-1b,eu-west-1c' });
    assert.deepEqual(brokers(t).map((b) => b.az).sort(), ['eu-west-1a', 'eu-west-1b', 'eu-west-1c']);
    assert.equal(other.synth().manifest.missing, undefined);
    assert.match(text(resources(t, 'AWS::EC2::LaunchTemplate')[0][1].Properties.LaunchTemplateData.UserData), /AWS_DEFAULT_REGION='eu-west-1'/);
  });
});
