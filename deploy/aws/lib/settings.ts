// Everything a user can set with `-c key=value` (or in cdk.json's "context"),
// read once, checked, and handed to the stacks as one typed object. Nothing
// here talks to AWS: `cdk synth` must work offline and without credentials.

/** Ports on the brokers. Kafka's and MSK's numbers where they have one. */
export const PORTS = {
  /** INTERNAL listener: brokers among themselves, and operators' tools (PLAINTEXT). */
  internal: 9092,
  /** CONTROLLER listener: the metadata quorum and partition replication (Fjord's raft). */
  controller: 9093,
  /** EXTERNAL listener: clients, through the NLB only (SASL/SCRAM-SHA-512). */
  external: 9094,
  /** `metrics.listener`: Prometheus /metrics and GET /ready, as MSK's open monitoring port. */
  metrics: 11001,
  /** NLB port of broker 1; broker i is `nlbFirst + i - 1` (8443, 8444, 8445). */
  nlbFirst: 8443,
} as const;

/** Where the instances get the `fjord` binary from. */
export type BinarySource =
  | { kind: 'asset'; path: string }
  | { kind: 'url'; url: string; sha256?: string }
  | { kind: 'none' };

export interface Settings {
  account: string;
  region: string;
  /** Three AZ names, when given with `-c azs=a,b,c`; else the stack's (cdk.json or a lookup). */
  azs?: string[];
  brokerVpcCidr: string;
  clientVpcCidr: string;
  natGateways: number;
  instanceType: string;
  arch: 'x86_64' | 'arm64';
  /** A fixed AMI id for `region`; without it the latest Amazon Linux 2023 (an SSM parameter). */
  amiId?: string;
  dataVolumeGiB: number;
  /** Host offset of each broker's fixed private IP inside its subnet (.10 of a /24). */
  brokerIpOffset: number;
  /** The host clients use; every broker advertises it with its own NLB port. */
  advertisedHost: string;
  scramUser: string;
  scramSecretName?: string;
  /** A Secrets Manager secret holding the EXTERNAL listener's PEM (key and chain): SASL_SSL. */
  externalTlsSecretArn?: string;
  binary: BinarySource;
  kafkaToolsUrl: string;
  kafkaToolsSha512?: string;
  /** CIDRs of peered VPCs or TGW attachments that reach the NLB directly. */
  clientCidrs: string[];
  /** Extra principals (account ids or ARNs) allowed to connect to the endpoint service. */
  endpointPrincipals: string[];
  /** The endpoint service's name, to deploy the client stack alone (another account). */
  endpointServiceName?: string;
}

/** What `tryGetContext` offers; kept as an interface so tests can pass a plain map. */
export interface ContextSource {
  tryGetContext(key: string): unknown;
}

export const PLACEHOLDER_ACCOUNT = '111111111111';
export const PLACEHOLDER_REGION = 'us-east-1';

export function readSettings(ctx: ContextSource): Settings {
  const str = (key: string): string | undefined => {
    const v = ctx.tryGetContext(key);
    if (v === undefined || v === null || v === '') return undefined;
    if (typeof v !== 'string' && typeof v !== 'number') throw new Error(`context ${key}: expected a string, got ${JSON.stringify(v)}`);
    return String(v).trim();
  };
  const list = (key: string): string[] => {
    const v = ctx.tryGetContext(key);
    if (v === undefined || v === null || v === '') return [];
    const items = Array.isArray(v) ? v.map(String) : String(v).split(',');
    return items.map((s) => s.trim()).filter((s) => s !== '');
  };
  const int = (key: string, dflt: number, min: number, max: number): number => {
    const v = str(key);
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new Error(`context ${key}=${v}: expected an integer in ${min}..${max}`);
    return n;
  };

  const account = str('account') ?? PLACEHOLDER_ACCOUNT;
  if (!/^\d{12}$/.test(account)) throw new Error(`context account=${account}: expected a 12-digit AWS account id`);
  const region = str('region') ?? PLACEHOLDER_REGION;
  const azs = list('azs');
  if (azs.length !== 0 && (azs.length !== 3 || new Set(azs).size !== 3 || azs.some((az) => !az.startsWith(region)))) {
    throw new Error(`context azs=${azs.join(',')}: expected three distinct AZ names of ${region}`);
  }
  const arch = str('arch') ?? 'x86_64';
  if (arch !== 'x86_64' && arch !== 'arm64') throw new Error(`context arch=${arch}: expected x86_64 or arm64`);
  const advertisedHost = (str('advertisedHost') ?? 'kafka.fjord.internal').toLowerCase();
  if (!/^([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,}$/.test(advertisedHost)) {
    throw new Error(`context advertisedHost=${advertisedHost}: expected a DNS name with at least two labels`);
  }
  const scramUser = str('scramUser') ?? 'fjord-client';
  // kafka-configs parses `SCRAM-SHA-512=[password=...]` itself; keep names to
  // characters it and the shell pass through untouched.
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(scramUser)) throw new Error(`context scramUser=${scramUser}: use letters, digits, '.', '_' or '-'`);

  return {
    account,
    region,
    azs: azs.length === 0 ? undefined : azs,
    brokerVpcCidr: cidr16(str('brokerVpcCidr') ?? '10.40.0.0/16', 'brokerVpcCidr'),
    clientVpcCidr: cidr16(str('clientVpcCidr') ?? '10.41.0.0/16', 'clientVpcCidr'),
    natGateways: int('natGateways', 1, 1, 3),
    instanceType: str('instanceType') ?? (arch === 'arm64' ? 'm7g.large' : 'm7i.large'),
    arch,
    amiId: str('amiId'),
    dataVolumeGiB: int('dataVolumeGiB', 100, 10, 16384),
    brokerIpOffset: int('brokerIpOffset', 10, 4, 250),
    advertisedHost,
    scramUser,
    scramSecretName: str('scramSecretName'),
    externalTlsSecretArn: str('externalTlsSecretArn'),
    binary: readBinary(str('fjordBinary'), str('fjordBinaryUrl'), str('fjordBinarySha256')),
    kafkaToolsUrl: url(str('kafkaToolsUrl') ?? 'https://archive.apache.org/dist/kafka/4.4.0/kafka_2.13-4.4.0.tgz', 'kafkaToolsUrl', ['https']),
    kafkaToolsSha512: hex(str('kafkaToolsSha512'), 128, 'kafkaToolsSha512'),
    clientCidrs: list('clientCidrs').map((c) => cidr(c, 'clientCidrs')),
    endpointPrincipals: list('endpointPrincipals'),
    endpointServiceName: str('endpointServiceName'),
  };
}

function readBinary(path: string | undefined, binaryUrl: string | undefined, sha256: string | undefined): BinarySource {
  if (path !== undefined && binaryUrl !== undefined) throw new Error('context: give fjordBinary (a local file) or fjordBinaryUrl, not both');
  if (path !== undefined) return { kind: 'asset', path };
  if (binaryUrl !== undefined) {
    return { kind: 'url', url: url(binaryUrl, 'fjordBinaryUrl', ['s3', 'https']), sha256: hex(sha256, 64, 'fjordBinarySha256') };
  }
  return { kind: 'none' };
}

// URLs go into a shell script in single quotes: nothing that could end them.
function url(value: string, key: string, schemes: string[]): string {
  const scheme = /^([a-z0-9]+):\/\/[^\s'"$`\\]+$/.exec(value)?.[1];
  if (scheme === undefined || !schemes.includes(scheme)) {
    throw new Error(`context ${key}=${value}: expected a ${schemes.map((s) => `${s}://`).join(' or ')} URL`);
  }
  return value;
}

function hex(value: string | undefined, digits: number, key: string): string | undefined {
  if (value !== undefined && !new RegExp(`^[0-9a-f]{${digits}}$`).test(value)) throw new Error(`context ${key}: expected ${digits} lowercase hex digits`);
  return value;
}

function cidr(value: string, key: string): string {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(value);
  if (m === null || m.slice(1, 5).some((o) => Number(o) > 255) || Number(m[5]) > 32) {
    throw new Error(`context ${key}: ${value} is not an IPv4 CIDR`);
  }
  return value;
}

function cidr16(value: string, key: string): string {
  if (!cidr(value, key).endsWith('/16')) throw new Error(`context ${key}=${value}: expected a /16 (three /24 subnet pairs are carved from it)`);
  return value;
}

/**
 * The address `offset` hosts into an IPv4 CIDR, e.g. (`10.40.3.0/24`, 10) is
 * `10.40.3.10`. AWS keeps the first four addresses and the last one of every
 * subnet, so those are refused.
 */
export function hostInCidr(block: string, offset: number): string {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\/(\d+)$/.exec(block);
  if (m === null) throw new Error(`not an IPv4 CIDR: ${block}`);
  const prefix = Number(m[5]);
  const size = 2 ** (32 - prefix);
  if (!Number.isInteger(offset) || offset < 4 || offset > size - 2) {
    throw new Error(`host offset ${offset} is outside the usable addresses of ${block} (4..${size - 2})`);
  }
  const base = m.slice(1, 5).reduce((acc, o) => acc * 256 + Number(o), 0);
  const addr = base + offset;
  return [24, 16, 8, 0].map((shift) => Math.floor(addr / 2 ** shift) % 256).join('.');
}

/** The NLB port of broker `nodeId` (1-based). */
export function nlbPort(nodeId: number): number {
  return PORTS.nlbFirst + nodeId - 1;
}
