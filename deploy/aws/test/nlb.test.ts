// The NLB: one TCP listener per broker port, each to a target group holding
// exactly that broker.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { brokers, ref, resources, setting, synth } from './helpers';

describe('network load balancer', () => {
  const { cluster } = synth();
  const listeners = resources(cluster, 'AWS::ElasticLoadBalancingV2::Listener');
  const groups = Object.fromEntries(resources(cluster, 'AWS::ElasticLoadBalancingV2::TargetGroup'));
  const enis = resources(cluster, 'AWS::EC2::NetworkInterface');

  it('has exactly three TCP listeners, on 8443, 8444 and 8445', () => {
    assert.equal(listeners.length, 3);
    assert.deepEqual(listeners.map(([, l]) => l.Properties.Port).sort(), [8443, 8444, 8445]);
    for (const [, l] of listeners) assert.equal(l.Properties.Protocol, 'TCP');
  });

  it('forwards each listener to a target group of its own with one target', () => {
    const forwarded = listeners.map(([id, l]) => {
      const actions = l.Properties.DefaultActions;
      assert.equal(actions.length, 1, id);
      assert.equal(actions[0].Type, 'forward', id);
      return ref(actions[0].TargetGroupArn);
    });
    assert.equal(new Set(forwarded).size, 3, 'three distinct target groups');
    assert.equal(Object.keys(groups).length, 3, 'and no others');
    for (const id of forwarded) {
      const g = groups[id].Properties;
      assert.equal(g.TargetType, 'ip', id);
      assert.equal(g.Targets.length, 1, `${id} has one target`);
      assert.equal(g.Targets[0].Port, 9094, `${id} targets the EXTERNAL port`);
    }
  });

  it("sends port 8443+i-1 to broker i's fixed address, the one broker i advertises that port from", () => {
    const byIp = new Map(brokers(cluster).map((b) => [setting(b.properties, 'listeners')!.match(/INTERNAL:\/\/([\d.]+):/)![1], b]));
    const eniIps = new Set(enis.map(([, e]) => e.Properties.PrivateIpAddress));
    const targets = listeners.map(([, l]) => {
      const ip = groups[ref(l.Properties.DefaultActions[0].TargetGroupArn)].Properties.Targets[0].Id as string;
      assert.ok(eniIps.has(ip), `${ip} is a broker ENI`);
      const b = byIp.get(ip);
      assert.ok(b !== undefined, `a broker listens on ${ip}`);
      const advertised = setting(b.properties, 'advertised.listeners')!;
      assert.match(advertised, new RegExp(`EXTERNAL://kafka\\.fjord\\.internal:${l.Properties.Port}(,|$)`));
      assert.equal(setting(b.properties, 'node.id'), String(l.Properties.Port - 8442));
      return ip;
    });
    assert.equal(new Set(targets).size, 3, 'three distinct brokers');
  });

  it('health-checks each broker with GET /ready on the metrics port', () => {
    for (const [id, g] of Object.entries(groups)) {
      assert.equal(g.Properties.HealthCheckProtocol, 'HTTP', id);
      assert.equal(g.Properties.HealthCheckPort, '11001', id);
      assert.equal(g.Properties.HealthCheckPath, '/ready', id);
    }
  });

  it('is internal, cross-zone, with a security group, in the three broker subnets', () => {
    const nlbs = resources(cluster, 'AWS::ElasticLoadBalancingV2::LoadBalancer');
    assert.equal(nlbs.length, 1);
    const [[nlbId, nlb]] = nlbs;
    assert.equal(nlb.Properties.Type, 'network');
    assert.equal(nlb.Properties.Scheme, 'internal');
    const attrs = Object.fromEntries(nlb.Properties.LoadBalancerAttributes.map((a: { Key: string; Value: string }) => [a.Key, a.Value]));
    assert.equal(attrs['load_balancing.cross_zone.enabled'], 'true');
    assert.equal(nlb.Properties.SecurityGroups.length, 1);
    const brokerSubnets = new Set(brokers(cluster).map((b) => b.subnetId));
    assert.deepEqual(new Set(nlb.Properties.Subnets.map(ref)), brokerSubnets);
    for (const [id, l] of listeners) assert.equal(ref(l.Properties.LoadBalancerArn), nlbId, id);
  });
});
