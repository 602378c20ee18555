// One Fjord broker in one AZ.
//
// Its identity lives outside any instance: a network interface with a fixed
// private IP (what controller.quorum.voters and the NLB target name) and an
// EBS volume (its partition logs and raft state). An Auto Scaling group of
// exactly one instance in that AZ's subnet runs it; the boot script attaches
// the interface and the volume. A failed or replaced instance is replaced by
// the group, and the new one comes back as the same broker with the same
// data, which a plain EC2 instance with a fixed IP cannot do (CloudFormation
// creates a replacement before deleting the old one, and the IP is taken).

import { Aws, RemovalPolicy, Size, Stack, Tags } from 'aws-cdk-lib';
import * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';

import { Settings } from './settings';
import { bootScript } from './user-data';

export interface BrokerProps {
  nodeId: number;
  vpc: ec2.IVpc;
  subnet: ec2.ISubnet;
  ip: string;
  voters: string;
  securityGroup: ec2.ISecurityGroup;
  machineImage: ec2.IMachineImage;
  settings: Settings;
  scramSecret: secretsmanager.ISecret;
  tlsSecret?: secretsmanager.ISecret;
  /** The binary as an S3 asset, when the user gave a local file. */
  binaryAsset?: s3assets.Asset;
}

/** The tag whose value names a broker; instance permissions are scoped by it. */
export const BROKER_TAG = 'fjord:broker';

export class Broker extends Construct {
  readonly nodeId: number;
  readonly ip: string;
  readonly role: iam.Role;
  readonly group: autoscaling.AutoScalingGroup;
  readonly eni: ec2.CfnNetworkInterface;
  readonly volume: ec2.Volume;

  constructor(scope: Construct, id: string, props: BrokerProps) {
    super(scope, id);
    const { nodeId, settings } = props;
    const stack = Stack.of(this);
    this.nodeId = nodeId;
    this.ip = props.ip;
    const az = props.subnet.availabilityZone;

    this.eni = new ec2.CfnNetworkInterface(this, 'Eni', {
      subnetId: props.subnet.subnetId,
      privateIpAddress: props.ip,
      groupSet: [props.securityGroup.securityGroupId],
      description: `Fjord broker ${nodeId}: its fixed address`,
    });
    this.volume = new ec2.Volume(this, 'Data', {
      availabilityZone: az,
      size: Size.gibibytes(settings.dataVolumeGiB),
      volumeType: ec2.EbsDeviceVolumeType.GP3,
      encrypted: true,
      // A deleted stack or a moved broker leaves a snapshot of its log behind.
      removalPolicy: RemovalPolicy.SNAPSHOT,
    });

    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
      description: `Fjord broker ${nodeId}`,
      // Session Manager instead of SSH: no key pair, no port 22.
      managedPolicies: [iam.ManagedPolicy.fromAwsManagedPolicyName('AmazonSSMManagedInstanceCore')],
    });
    this.grantAttach(stack);
    props.scramSecret.grantRead(this.role);
    props.tlsSecret?.grantRead(this.role);
    props.binaryAsset?.grantRead(this.role);
    if (settings.binary.kind === 'url' && settings.binary.url.startsWith('s3://')) {
      const path = settings.binary.url.slice('s3://'.length);
      this.role.addToPolicy(new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: [`arn:${Aws.PARTITION}:s3:::${path}`] }));
    }

    const userData = ec2.UserData.forLinux();
    userData.addCommands(
      ...bootScript({
        nodeId,
        az,
        ip: props.ip,
        voters: props.voters,
        advertisedHost: settings.advertisedHost,
        eniId: this.eni.ref,
        volumeId: this.volume.volumeId,
        region: stack.region,
        scramSecretArn: props.scramSecret.secretArn,
        tlsSecretArn: props.tlsSecret?.secretArn,
        binary: { ...settings.binary, s3Url: props.binaryAsset?.s3ObjectUrl },
        kafkaToolsUrl: settings.kafkaToolsUrl,
        kafkaToolsSha512: settings.kafkaToolsSha512,
      }),
    );
    const launchTemplate = new ec2.LaunchTemplate(this, 'LaunchTemplate', {
      machineImage: props.machineImage,
      instanceType: new ec2.InstanceType(settings.instanceType),
      userData,
      role: this.role,
      securityGroup: props.securityGroup,
      requireImdsv2: true,
      blockDevices: [
        {
          deviceName: '/dev/xvda',
          volume: ec2.BlockDeviceVolume.ebs(20, { volumeType: ec2.EbsDeviceVolumeType.GP3, encrypted: true }),
        },
      ],
    });
    this.group = new autoscaling.AutoScalingGroup(this, 'Group', {
      vpc: props.vpc,
      vpcSubnets: { subnets: [props.subnet] },
      launchTemplate,
      minCapacity: 1,
      maxCapacity: 1,
    });
    // No update policy on purpose: a new launch template version (a new AMI,
    // changed user data) applies at the next replacement, so a deploy never
    // restarts all three brokers at once. README: "Rolling the brokers".
    Tags.of(this).add(BROKER_TAG, `${stack.stackName}-${nodeId}`);
    Tags.of(this).add('Name', `${stack.stackName}-broker-${nodeId}`);
  }

  /**
   * Attach this broker's ENI and volume, to an instance of this broker only
   * (the tag the group puts on its instances at launch).
   */
  private grantAttach(stack: Stack): void {
    const arn = (type: string, id: string) => `arn:${Aws.PARTITION}:ec2:${stack.region}:${stack.account}:${type}/${id}`;
    const actions = ['ec2:AttachNetworkInterface', 'ec2:AttachVolume'];
    this.role.addToPolicy(
      new iam.PolicyStatement({ actions, resources: [arn('network-interface', this.eni.ref), arn('volume', this.volume.volumeId)] }),
    );
    this.role.addToPolicy(
      new iam.PolicyStatement({
        actions,
        resources: [arn('instance', '*')],
        conditions: { StringEquals: { [`aws:ResourceTag/${BROKER_TAG}`]: `${stack.stackName}-${this.nodeId}` } },
      }),
    );
    // Describe calls have no resource-level permissions.
    this.role.addToPolicy(new iam.PolicyStatement({ actions: ['ec2:DescribeNetworkInterfaces', 'ec2:DescribeVolumes'], resources: ['*'] }));
  }
}
