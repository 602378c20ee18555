// The Fjord cluster: a VPC over three AZs, one broker per AZ, an internal
// NLB with one port per broker (8443/8444/8445) and a PrivateLink endpoint
// service on it, as MSK's multi-VPC private connectivity is usually built.

import { Annotations, CfnOutput, Duration, RemovalPolicy, Stack, StackProps, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as elbv2targets from 'aws-cdk-lib/aws-elasticloadbalancingv2-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as route53 from 'aws-cdk-lib/aws-route53';
import * as route53targets from 'aws-cdk-lib/aws-route53-targets';
import * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';

import { Broker } from './broker';
import { PORTS, Settings, hostInCidr, nlbPort } from './settings';
import { quorumVoters } from './user-data';

export interface ClusterStackProps extends StackProps {
  settings: Settings;
}

export const BROKER_COUNT = 3;

export class ClusterStack extends Stack {
  readonly vpc: ec2.Vpc;
  readonly brokers: Broker[];
  readonly nlb: elbv2.NetworkLoadBalancer;
  readonly endpointService: ec2.VpcEndpointService;
  readonly scramSecret: secretsmanager.Secret;
  private readonly fixedAzs?: string[];

  constructor(scope: Construct, id: string, props: ClusterStackProps) {
    super(scope, id, props);
    const s = props.settings;
    this.fixedAzs = s.azs;
    acknowledgeFixedAzs(this);

    this.vpc = new ec2.Vpc(this, 'Vpc', {
      ipAddresses: ec2.IpAddresses.cidr(s.brokerVpcCidr),
      maxAzs: BROKER_COUNT,
      natGateways: s.natGateways,
      subnetConfiguration: [
        { name: 'public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 },
        { name: 'brokers', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 24 },
      ],
      // The binary and the AL2023 repositories come from S3 without the NAT gateway.
      gatewayEndpoints: { S3: { service: ec2.GatewayVpcEndpointAwsService.S3 } },
    });
    const subnets = this.vpc.privateSubnets;
    if (subnets.length !== BROKER_COUNT) {
      throw new Error(`the broker VPC has ${subnets.length} private subnets; one broker per AZ needs ${BROKER_COUNT} AZs`);
    }

    const { brokerSg, nlbSg } = this.securityGroups(s);
    this.scramSecret = this.makeScramSecret(s);
    const tlsSecret =
      s.externalTlsSecretArn === undefined
        ? undefined
        : secretsmanager.Secret.fromSecretCompleteArn(this, 'ExternalTlsSecret', s.externalTlsSecretArn);
    const binaryAsset = s.binary.kind === 'asset' ? new s3assets.Asset(this, 'FjordBinary', { path: s.binary.path }) : undefined;
    if (s.binary.kind === 'none') {
      Annotations.of(this).addWarning(
        'No fjord binary given (-c fjordBinary=PATH or -c fjordBinaryUrl=URL): the template synthesizes, but the brokers would stop at boot.',
      );
    }

    // Fixed addresses, known at synth time: every broker's voters list and
    // every NLB target are plain strings, and survive instance replacement.
    const ips = subnets.map((subnet) => hostInCidr(subnet.ipv4CidrBlock, s.brokerIpOffset));
    const voters = quorumVoters(ips);
    const machineImage =
      s.amiId !== undefined
        ? ec2.MachineImage.genericLinux({ [s.region]: s.amiId })
        : ec2.MachineImage.latestAmazonLinux2023({
            cpuType: s.arch === 'arm64' ? ec2.AmazonLinuxCpuType.ARM_64 : ec2.AmazonLinuxCpuType.X86_64,
          });
    this.brokers = subnets.map(
      (subnet, i) =>
        new Broker(this, `Broker${i + 1}`, {
          nodeId: i + 1,
          vpc: this.vpc,
          subnet,
          ip: ips[i],
          voters,
          securityGroup: brokerSg,
          machineImage,
          settings: s,
          scramSecret: this.scramSecret,
          tlsSecret,
          binaryAsset,
        }),
    );

    this.nlb = this.makeNlb(nlbSg);
    this.endpointService = new ec2.VpcEndpointService(this, 'EndpointService', {
      vpcEndpointServiceLoadBalancers: [this.nlb],
      // Only principals listed below may connect; those are trusted, so no
      // manual acceptance step (set it in the console for a stranger).
      acceptanceRequired: false,
      allowedPrincipals: [new iam.AccountRootPrincipal(), ...s.endpointPrincipals.map(principal)],
    });
    this.advertisedHostZone(s.advertisedHost);
    this.outputs(s, ips);
  }

  /** `-c azs=a,b,c` pins the AZs without a lookup; else cdk.json's context or a lookup at deploy. */
  get availabilityZones(): string[] {
    return this.fixedAzs ?? super.availabilityZones;
  }

  private securityGroups(s: Settings): { brokerSg: ec2.SecurityGroup; nlbSg: ec2.SecurityGroup } {
    const brokerSg = new ec2.SecurityGroup(this, 'BrokerSg', {
      vpc: this.vpc,
      description: 'Fjord brokers',
      allowAllOutbound: false,
    });
    const nlbSg = new ec2.SecurityGroup(this, 'NlbSg', {
      vpc: this.vpc,
      description: 'Fjord NLB: one port per broker',
      allowAllOutbound: false,
    });
    const vpcCidr = ec2.Peer.ipv4(s.brokerVpcCidr);
    const nlbPorts = ec2.Port.tcpRange(nlbPort(1), nlbPort(BROKER_COUNT));

    brokerSg.addIngressRule(brokerSg, ec2.Port.tcp(PORTS.internal), 'INTERNAL: brokers among themselves');
    brokerSg.addIngressRule(brokerSg, ec2.Port.tcp(PORTS.controller), 'CONTROLLER: metadata quorum and replication');
    brokerSg.addIngressRule(nlbSg, ec2.Port.tcp(PORTS.external), 'EXTERNAL: clients, through the NLB only');
    brokerSg.addIngressRule(vpcCidr, ec2.Port.tcp(PORTS.metrics), 'metrics and /ready: NLB health checks and Prometheus');
    brokerSg.addEgressRule(brokerSg, ec2.Port.tcp(PORTS.internal), 'INTERNAL to the other brokers');
    brokerSg.addEgressRule(brokerSg, ec2.Port.tcp(PORTS.controller), 'CONTROLLER to the other brokers');
    brokerSg.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'AWS APIs, S3, package repositories, the Kafka tools download');

    nlbSg.addIngressRule(vpcCidr, nlbPorts, 'clients in the broker VPC');
    for (const cidr of s.clientCidrs) nlbSg.addIngressRule(ec2.Peer.ipv4(cidr), nlbPorts, 'clients in a peered VPC or behind a transit gateway');
    nlbSg.addEgressRule(brokerSg, ec2.Port.tcp(PORTS.external), 'to the brokers');
    nlbSg.addEgressRule(brokerSg, ec2.Port.tcp(PORTS.metrics), 'health checks');
    return { brokerSg, nlbSg };
  }

  private makeScramSecret(s: Settings): secretsmanager.Secret {
    // MSK wants a customer-managed key and an `AmazonMSK_` name; Fjord reads
    // the secret only through the brokers' boot script, so any name works.
    const key = new kms.Key(this, 'ScramKey', {
      description: 'Fjord SCRAM credentials',
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.DESTROY,
      pendingWindow: Duration.days(7),
    });
    return new secretsmanager.Secret(this, 'ScramSecret', {
      secretName: s.scramSecretName,
      description: 'Fjord SCRAM-SHA-512 user of the EXTERNAL listener (the MSK secret shape: username, password)',
      encryptionKey: key,
      generateSecretString: {
        secretStringTemplate: JSON.stringify({ username: s.scramUser }),
        generateStringKey: 'password',
        passwordLength: 32,
        // kafka-configs takes `SCRAM-SHA-512=[password=...]` apart on
        // punctuation: letters and digits only.
        excludePunctuation: true,
        includeSpace: false,
      },
    });
  }

  private makeNlb(nlbSg: ec2.SecurityGroup): elbv2.NetworkLoadBalancer {
    const nlb = new elbv2.NetworkLoadBalancer(this, 'Nlb', {
      vpc: this.vpc,
      internetFacing: false,
      vpcSubnets: { subnets: this.vpc.privateSubnets },
      // Each port has its one target in one AZ; without cross-zone, an NLB
      // node (or a PrivateLink ENI) in another AZ could not reach it.
      crossZoneEnabled: true,
      securityGroups: [nlbSg],
      // PrivateLink traffic is allowed by the endpoint service's principals
      // and the consumer's endpoint security group, not by source CIDRs here.
      enforceSecurityGroupInboundRulesOnPrivateLinkTraffic: false,
    });
    for (const b of this.brokers) {
      const group = new elbv2.NetworkTargetGroup(this, `Broker${b.nodeId}Target`, {
        vpc: this.vpc,
        port: PORTS.external,
        protocol: elbv2.Protocol.TCP,
        targetType: elbv2.TargetType.IP,
        targets: [new elbv2targets.IpTarget(b.ip, PORTS.external)],
        // The brokers see the NLB's address, which the broker SG allows by group.
        preserveClientIp: false,
        deregistrationDelay: Duration.seconds(30),
        healthCheck: {
          protocol: elbv2.Protocol.HTTP,
          port: String(PORTS.metrics),
          path: '/ready',
          interval: Duration.seconds(10),
          healthyThresholdCount: 2,
          unhealthyThresholdCount: 2,
        },
      });
      nlb.addListener(`Broker${b.nodeId}`, {
        port: nlbPort(b.nodeId),
        protocol: elbv2.Protocol.TCP,
        defaultTargetGroups: [group],
      });
    }
    return nlb;
  }

  /**
   * The advertised host, resolvable in the broker VPC too: a private zone
   * named after it, its apex an alias of the NLB. Peered and TGW-attached
   * VPCs can be associated with this zone (README).
   */
  private advertisedHostZone(host: string): void {
    const zone = new route53.PrivateHostedZone(this, 'AdvertisedHostZone', { zoneName: host, vpc: this.vpc });
    new route53.ARecord(this, 'AdvertisedHostRecord', {
      zone,
      target: route53.RecordTarget.fromAlias(new route53targets.LoadBalancerTarget(this.nlb)),
    });
  }

  private outputs(s: Settings, ips: string[]): void {
    new CfnOutput(this, 'BootstrapServers', { value: bootstrapServers(s.advertisedHost) });
    new CfnOutput(this, 'NlbDnsName', { value: this.nlb.loadBalancerDnsName });
    new CfnOutput(this, 'EndpointServiceName', { value: this.endpointService.vpcEndpointServiceName });
    new CfnOutput(this, 'ScramSecretArn', { value: this.scramSecret.secretArn });
    new CfnOutput(this, 'BrokerIps', { value: ips.join(',') });
    for (const b of this.brokers) {
      // What `aws autoscaling start-instance-refresh` takes to roll this broker.
      new CfnOutput(this, `Broker${b.nodeId}Group`, { value: b.group.autoScalingGroupName });
    }
  }
}

/** `host:8443,host:8444,host:8445`. */
export function bootstrapServers(host: string): string {
  return Array.from({ length: BROKER_COUNT }, (_, i) => `${host}:${nlbPort(i + 1)}`).join(',');
}

/** One broker per named AZ is the design; the validator's advice against naming AZs does not apply. */
export function acknowledgeFixedAzs(stack: Stack): void {
  Validations.of(stack).acknowledge({ id: 'CloudFormation-Validate::W3010', reason: 'one broker per AZ: the AZs are named on purpose' });
}

function principal(value: string): iam.ArnPrincipal {
  if (/^\d{12}$/.test(value)) return new iam.AccountPrincipal(value);
  if (value.startsWith('arn:')) return new iam.ArnPrincipal(value);
  throw new Error(`context endpointPrincipals: ${value} is neither an account id nor an ARN`);
}
