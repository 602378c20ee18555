// Every rule of the broker and NLB security groups, exactly: ports and sources.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { Template } from 'aws-cdk-lib/assertions';

import { resources, synth, target } from './helpers';

/** The rules of one group, inline and standalone, as `tcp 9092-9092 from <source>` lines, sorted. */
function rules(t: Template, sgId: string, direction: 'in' | 'out', names: Record<string, string>): string[] {
  const [inline, type, peerKey] =
    direction === 'in'
      ? ['SecurityGroupIngress', 'AWS::EC2::SecurityGroupIngress', 'SourceSecurityGroupId']
      : ['SecurityGroupEgress', 'AWS::EC2::SecurityGroupEgress', 'DestinationSecurityGroupId'];
  const sg = t.findResources('AWS::EC2::SecurityGroup')[sgId].Properties;
  const all = [
    ...(sg[inline] ?? []),
    ...resources(t, type)
      .filter(([, r]) => target(r.Properties.GroupId) === sgId)
      .map(([, r]) => r.Properties),
  ];
  const word = direction === 'in' ? 'from' : 'to';
  return all
    .map((r) => {
      const peer = r[peerKey] !== undefined ? names[target(r[peerKey])] ?? target(r[peerKey]) : r.CidrIp;
      return `${r.IpProtocol} ${r.FromPort}-${r.ToPort} ${word} ${peer}`;
    })
    .sort();
}

/** The logical ids of the broker SG (on the ENIs) and the NLB SG (on the NLB). */
function groups(t: Template): { broker: string; nlb: string; names: Record<string, string> } {
  const eniGroups = new Set(resources(t, 'AWS::EC2::NetworkInterface').map(([, e]) => target(e.Properties.GroupSet[0])));
  assert.equal(eniGroups.size, 1, 'all broker ENIs share one security group');
  const [broker] = eniGroups;
  const [[, nlb]] = resources(t, 'AWS::ElasticLoadBalancingV2::LoadBalancer');
  const nlbSg = target(nlb.Properties.SecurityGroups[0]);
  for (const [id, lt] of resources(t, 'AWS::EC2::LaunchTemplate')) {
    assert.deepEqual(lt.Properties.LaunchTemplateData.SecurityGroupIds.map(target), [broker], `${id}: instances in the broker group`);
  }
  return { broker, nlb: nlbSg, names: { [broker]: 'brokers', [nlbSg]: 'nlb' } };
}

describe('security groups', () => {
  const { cluster } = synth();
  const g = groups(cluster);

  it('brokers accept INTERNAL and CONTROLLER from brokers, EXTERNAL from the NLB, metrics from the VPC', () => {
    assert.deepEqual(rules(cluster, g.broker, 'in', g.names), [
      'tcp 11001-11001 from 10.40.0.0/16',
      'tcp 9092-9092 from brokers',
      'tcp 9093-9093 from brokers',
      'tcp 9094-9094 from nlb',
    ]);
  });

  it('brokers talk to brokers on 9092-9093 and to AWS APIs and downloads on 443, nothing else', () => {
    assert.deepEqual(rules(cluster, g.broker, 'out', g.names), [
      'tcp 443-443 to 0.0.0.0/0',
      'tcp 9092-9092 to brokers',
      'tcp 9093-9093 to brokers',
    ]);
  });

  it('the NLB accepts 8443-8445 from the broker VPC and reaches the brokers on EXTERNAL and metrics only', () => {
    assert.deepEqual(rules(cluster, g.nlb, 'in', g.names), ['tcp 8443-8445 from 10.40.0.0/16']);
    assert.deepEqual(rules(cluster, g.nlb, 'out', g.names), ['tcp 11001-11001 to brokers', 'tcp 9094-9094 to brokers']);
  });

  it('-c clientCidrs opens the NLB ports, and only those, to peered or TGW networks', () => {
    const { cluster: t } = synth({ clientCidrs: '172.16.0.0/16,192.168.8.0/24' });
    const h = groups(t);
    assert.deepEqual(rules(t, h.nlb, 'in', h.names), [
      'tcp 8443-8445 from 10.40.0.0/16',
      'tcp 8443-8445 from 172.16.0.0/16',
      'tcp 8443-8445 from 192.168.8.0/24',
    ]);
    assert.deepEqual(rules(t, h.broker, 'in', h.names), rules(cluster, g.broker, 'in', g.names), 'the brokers do not change');
  });

  it('opens nothing to 0.0.0.0/0 or ::/0', () => {
    for (const t of [cluster, synth().client]) {
      const inline = Object.values(t.findResources('AWS::EC2::SecurityGroup')).flatMap((sg) => sg.Properties.SecurityGroupIngress ?? []);
      const standalone = Object.values(t.findResources('AWS::EC2::SecurityGroupIngress')).map((r) => r.Properties);
      for (const r of [...inline, ...standalone]) {
        assert.notEqual(r.CidrIp, '0.0.0.0/0', JSON.stringify(r));
        assert.notEqual(r.CidrIpv6, '::/0', JSON.stringify(r));
      }
    }
  });
});
