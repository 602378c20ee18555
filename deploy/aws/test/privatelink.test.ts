// The endpoint service on the NLB, the consumer VPC's interface endpoint to
// it, and the private zones that make the advertised host resolve on both sides.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';

import { buildApp } from '../lib/app';
import { cdkJsonContext, ref, resources, synth, target, text } from './helpers';

describe('PrivateLink', () => {
  const { cluster, client } = synth();

  it('offers an endpoint service on the NLB, no acceptance step, to this account', () => {
    const services = resources(cluster, 'AWS::EC2::VPCEndpointService');
    assert.equal(services.length, 1);
    const [[serviceId, service]] = services;
    const [[nlbId]] = resources(cluster, 'AWS::ElasticLoadBalancingV2::LoadBalancer');
    assert.deepEqual(service.Properties.NetworkLoadBalancerArns.map(ref), [nlbId]);
    assert.equal(service.Properties.AcceptanceRequired, false);
    const permissions = resources(cluster, 'AWS::EC2::VPCEndpointServicePermissions');
    assert.equal(permissions.length, 1);
    assert.equal(ref(permissions[0][1].Properties.ServiceId), serviceId);
    assert.deepEqual(permissions[0][1].Properties.AllowedPrincipals.map(text), ['arn:aws:iam::111111111111:root']);
  });

  it('adds the principals of -c endpointPrincipals', () => {
    const { cluster: t } = synth({ endpointPrincipals: '222222222222,arn:aws:iam::333333333333:role/kafka' });
    const [[, p]] = resources(t, 'AWS::EC2::VPCEndpointServicePermissions');
    assert.deepEqual(p.Properties.AllowedPrincipals.map(text).sort(), [
      'arn:aws:iam::111111111111:root',
      'arn:aws:iam::222222222222:root',
      'arn:aws:iam::333333333333:role/kafka',
    ]);
  });

  it("puts an interface endpoint to that service in the consumer VPC's three subnets", () => {
    const endpoints = resources(client, 'AWS::EC2::VPCEndpoint');
    assert.equal(endpoints.length, 1);
    const [[, e]] = endpoints;
    assert.equal(e.Properties.VpcEndpointType, 'Interface');
    assert.equal(e.Properties.PrivateDnsEnabled, false);
    // The service name is the cluster stack's, imported: com.amazonaws.vpce.<region>.<service id>.
    const name = text(e.Properties.ServiceName);
    assert.match(name, /^com\.amazonaws\.vpce\.\{Ref:AWS::Region\}\./);
    assert.match(JSON.stringify(e.Properties.ServiceName), /Fn::ImportValue.*EndpointService/);
    const [[vpcId, vpc]] = resources(client, 'AWS::EC2::VPC');
    assert.equal(vpc.Properties.CidrBlock, '10.41.0.0/16');
    assert.equal(ref(e.Properties.VpcId), vpcId);
    const subnets = client.findResources('AWS::EC2::Subnet');
    const ids: string[] = e.Properties.SubnetIds.map(ref);
    assert.equal(ids.length, 3);
    assert.equal(new Set(ids.map((id) => subnets[id].Properties.AvailabilityZone)).size, 3, 'three AZs');
    for (const id of ids) assert.equal(ref(subnets[id].Properties.VpcId), vpcId);
  });

  it('lets only the consumer VPC reach the endpoint, on 8443-8445', () => {
    const [[, e]] = resources(client, 'AWS::EC2::VPCEndpoint');
    assert.equal(e.Properties.SecurityGroupIds.length, 1);
    const sgId = target(e.Properties.SecurityGroupIds[0]);
    const sg = client.findResources('AWS::EC2::SecurityGroup')[sgId].Properties;
    const standalone = resources(client, 'AWS::EC2::SecurityGroupIngress').filter(([, r]) => target(r.Properties.GroupId) === sgId);
    const rules = [...(sg.SecurityGroupIngress ?? []), ...standalone.map(([, r]) => r.Properties)];
    assert.deepEqual(
      rules.map((r) => `${r.IpProtocol} ${r.FromPort}-${r.ToPort} from ${r.CidrIp}`),
      ['tcp 8443-8445 from 10.41.0.0/16'],
    );
  });

  it('resolves the advertised host to the endpoint in the consumer VPC', () => {
    const [[zoneId, zone]] = resources(client, 'AWS::Route53::HostedZone');
    assert.equal(zone.Properties.Name, 'kafka.fjord.internal.');
    const [[vpcId]] = resources(client, 'AWS::EC2::VPC');
    assert.deepEqual(zone.Properties.VPCs.map((v: { VPCId: unknown }) => ref(v.VPCId)), [vpcId]);
    const [[, record]] = resources(client, 'AWS::Route53::RecordSet');
    assert.equal(ref(record.Properties.HostedZoneId), zoneId);
    assert.equal(record.Properties.Name, 'kafka.fjord.internal.');
    assert.equal(record.Properties.Type, 'A');
    const [[endpointId]] = resources(client, 'AWS::EC2::VPCEndpoint');
    // The first of the endpoint's DNS entries ("zone id:name"), its name part.
    assert.deepEqual(record.Properties.AliasTarget.DNSName, {
      'Fn::Select': [1, { 'Fn::Split': [':', { 'Fn::Select': [0, { 'Fn::GetAtt': [endpointId, 'DnsEntries'] }] }] }],
    });
  });

  it('resolves the advertised host to the NLB in the broker VPC', () => {
    const [[zoneId, zone]] = resources(cluster, 'AWS::Route53::HostedZone');
    assert.equal(zone.Properties.Name, 'kafka.fjord.internal.');
    const [[vpcId]] = resources(cluster, 'AWS::EC2::VPC');
    assert.deepEqual(zone.Properties.VPCs.map((v: { VPCId: unknown }) => ref(v.VPCId)), [vpcId]);
    const [[, record]] = resources(cluster, 'AWS::Route53::RecordSet');
    assert.equal(ref(record.Properties.HostedZoneId), zoneId);
    const [[nlbId]] = resources(cluster, 'AWS::ElasticLoadBalancingV2::LoadBalancer');
    assert.equal(text(record.Properties.AliasTarget.DNSName), `dualstack.{GetAtt:${nlbId}.DNSName}`);
  });

  it('builds only the consumer side, with the given service name, for -c endpointServiceName', () => {
    const name = 'com.amazonaws.vpce.us-east-1.vpce-svc-0123456789abcdef0';
    const app = new App({ context: { ...cdkJsonContext(), endpointServiceName: name } });
    const stacks = buildApp(app);
    assert.equal(stacks.cluster, undefined);
    const [[, e]] = resources(Template.fromStack(stacks.client), 'AWS::EC2::VPCEndpoint');
    assert.equal(e.Properties.ServiceName, name);
  });
});
