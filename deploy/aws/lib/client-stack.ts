// A consumer VPC, as a team or account that uses the cluster would have:
// an interface endpoint to the cluster's endpoint service, and a private
// zone that makes the advertised host resolve to that endpoint, so the
// addresses in Metadata responses (host:8443/8444/8445) lead back to it.

import { CfnOutput, Stack, StackProps } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as route53 from 'aws-cdk-lib/aws-route53';
import * as route53targets from 'aws-cdk-lib/aws-route53-targets';
import { Construct } from 'constructs';

import { BROKER_COUNT, acknowledgeFixedAzs, bootstrapServers } from './cluster-stack';
import { Settings, nlbPort } from './settings';

export interface ClientStackProps extends StackProps {
  settings: Settings;
  /** `com.amazonaws.vpce.<region>.vpce-svc-…`: the cluster stack's, or `-c endpointServiceName`. */
  endpointServiceName: string;
}

export class ClientStack extends Stack {
  readonly vpc: ec2.Vpc;
  readonly endpoint: ec2.InterfaceVpcEndpoint;
  private readonly fixedAzs?: string[];

  constructor(scope: Construct, id: string, props: ClientStackProps) {
    super(scope, id, props);
    const s = props.settings;
    this.fixedAzs = s.azs;
    acknowledgeFixedAzs(this);

    this.vpc = new ec2.Vpc(this, 'Vpc', {
      ipAddresses: ec2.IpAddresses.cidr(s.clientVpcCidr),
      maxAzs: BROKER_COUNT,
      natGateways: 0,
      subnetConfiguration: [{ name: 'clients', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 24 }],
    });
    const endpointSg = new ec2.SecurityGroup(this, 'EndpointSg', {
      vpc: this.vpc,
      description: 'Fjord PrivateLink endpoint: one port per broker',
      allowAllOutbound: false,
    });
    endpointSg.addIngressRule(
      ec2.Peer.ipv4(s.clientVpcCidr),
      ec2.Port.tcpRange(nlbPort(1), nlbPort(BROKER_COUNT)),
      'Kafka clients in this VPC',
    );
    this.endpoint = new ec2.InterfaceVpcEndpoint(this, 'FjordEndpoint', {
      vpc: this.vpc,
      service: new ec2.InterfaceVpcEndpointService(props.endpointServiceName, nlbPort(1)),
      subnets: { subnets: this.vpc.isolatedSubnets },
      securityGroups: [endpointSg],
      // The rule above is the whole of it; `open` would add the VPC CIDR on one port only.
      open: false,
      // An endpoint service's own private DNS needs a verified public domain;
      // the zone below does the same job for a private name.
      privateDnsEnabled: false,
    });

    const zone = new route53.PrivateHostedZone(this, 'AdvertisedHostZone', { zoneName: s.advertisedHost, vpc: this.vpc });
    new route53.ARecord(this, 'AdvertisedHostRecord', {
      zone,
      target: route53.RecordTarget.fromAlias(new route53targets.InterfaceVpcEndpointTarget(this.endpoint)),
    });

    new CfnOutput(this, 'BootstrapServers', { value: bootstrapServers(s.advertisedHost) });
    new CfnOutput(this, 'EndpointId', { value: this.endpoint.vpcEndpointId });
  }

  get availabilityZones(): string[] {
    return this.fixedAzs ?? super.availabilityZones;
  }
}
