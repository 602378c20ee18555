// The boot script of one broker instance and the files it writes:
// server.properties, the systemd units and the SCRAM user script. Pure
// functions of their inputs, so tests can read what an instance will run.
//
// Values known only at deploy time (the ENI and volume ids, ARNs, the
// region) arrive as CDK tokens inside the strings; CloudFormation
// substitutes them before cloud-init runs the script.

import { BinarySource, PORTS, nlbPort } from './settings';

export interface BrokerBoot {
  nodeId: number;
  /** The AZ name this broker was built for; the script refuses to run anywhere else. */
  az: string;
  /** The broker's fixed private IP (its own ENI, attached at boot). */
  ip: string;
  /** `controller.quorum.voters`, the same on every broker. */
  voters: string;
  advertisedHost: string;
  eniId: string;
  volumeId: string;
  region: string;
  scramSecretArn: string;
  /** When set, EXTERNAL is SASL_SSL with the PEM in this secret; else SASL_PLAINTEXT. */
  tlsSecretArn?: string;
  /** Where to fetch the binary; for an S3 asset, its s3:// URL. */
  binary: BinarySource & { s3Url?: string };
  kafkaToolsUrl: string;
  kafkaToolsSha512?: string;
}

export const DATA_MOUNT = '/var/lib/fjord';
export const LOG_DIR = `${DATA_MOUNT}/data`;
export const TLS_PEM = '/etc/fjord/external.pem';

/** `1@ip1:9093,2@ip2:9093,3@ip3:9093`. */
export function quorumVoters(ips: string[]): string {
  return ips.map((ip, i) => `${i + 1}@${ip}:${PORTS.controller}`).join(',');
}

/**
 * server.properties of one broker, as the lines of an unquoted heredoc: the
 * only shell expansion is `$AZ_ID`, read from IMDS at boot, because an AZ
 * name maps to a different AZ id in every account.
 */
export function serverProperties(b: BrokerBoot): string[] {
  const external = b.tlsSecretArn === undefined ? 'SASL_PLAINTEXT' : 'SASL_SSL';
  const lines = [
    `node.id=${b.nodeId}`,
    'process.roles=broker,controller',
    `controller.quorum.voters=${b.voters}`,
    'controller.listener.names=CONTROLLER',
    `listeners=INTERNAL://${b.ip}:${PORTS.internal},EXTERNAL://${b.ip}:${PORTS.external},CONTROLLER://${b.ip}:${PORTS.controller}`,
    `advertised.listeners=INTERNAL://${b.ip}:${PORTS.internal},EXTERNAL://${b.advertisedHost}:${nlbPort(b.nodeId)}`,
    `listener.security.protocol.map=INTERNAL:PLAINTEXT,EXTERNAL:${external},CONTROLLER:PLAINTEXT`,
    'inter.broker.listener.name=INTERNAL',
    'listener.name.external.sasl.enabled.mechanisms=SCRAM-SHA-512',
    'listener.name.external.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;',
  ];
  if (b.tlsSecretArn !== undefined) {
    lines.push('listener.name.external.ssl.keystore.type=PEM', `listener.name.external.ssl.keystore.location=${TLS_PEM}`);
  }
  lines.push(
    // MSK names racks by AZ id (use1-az1), which mean the same zone in every account.
    'broker.rack=$AZ_ID',
    `log.dirs=${LOG_DIR}`,
    // MSK's defaults for a three-AZ cluster.
    'default.replication.factor=3',
    'min.insync.replicas=2',
    'offsets.topic.replication.factor=3',
    'num.partitions=1',
    'auto.create.topics.enable=false',
    `metrics.listener=0.0.0.0:${PORTS.metrics}`,
    'tracing.format=json',
  );
  return lines;
}

/** The boot script's lines, for `UserData.addCommands`. */
export function bootScript(b: BrokerBoot): string[] {
  return [
    'set -euo pipefail',
    'umask 022',
    'install -d -m 0755 /etc/fjord /usr/local/lib/fjord',
    // Everything later steps and the SCRAM unit need, in one file.
    ...heredoc('/etc/fjord/boot.env', [
      `NODE_ID=${b.nodeId}`,
      `EXPECTED_AZ='${b.az}'`,
      `BROKER_IP='${b.ip}'`,
      `ENI_ID='${b.eniId}'`,
      `VOLUME_ID='${b.volumeId}'`,
      `SCRAM_SECRET_ARN='${b.scramSecretArn}'`,
      `KAFKA_TOOLS_URL='${b.kafkaToolsUrl}'`,
      `KAFKA_TOOLS_SHA512='${b.kafkaToolsSha512 ?? ''}'`,
      `export AWS_DEFAULT_REGION='${b.region}'`,
    ]),
    ...heredoc('/usr/local/lib/fjord/lib.sh', LIB_SH),
    '. /etc/fjord/boot.env',
    '. /usr/local/lib/fjord/lib.sh',
    'INSTANCE_ID=$(imds instance-id)',
    'AZ=$(imds placement/availability-zone)',
    'AZ_ID=$(imds placement/availability-zone-id)',
    'if [ "$AZ" != "$EXPECTED_AZ" ]; then echo "fjord-boot: broker $NODE_ID belongs in $EXPECTED_AZ, this instance is in $AZ" >&2; exit 1; fi',
    'echo "fjord-boot: broker $NODE_ID on $INSTANCE_ID in $AZ ($AZ_ID)"',
    // The binary first: a deploy without one fails here, before it holds the ENI or the volume.
    ...fetchBinary(b.binary),
    ...ATTACH_ENI,
    ...ATTACH_VOLUME,
    'id -u fjord >/dev/null 2>&1 || useradd --system --no-create-home --home-dir /var/lib/fjord --shell /sbin/nologin fjord',
    `chown fjord:fjord ${DATA_MOUNT}`,
    `install -d -o fjord -g fjord -m 0750 ${LOG_DIR}`,
    // Every segment and index is memory-mapped; Kafka's guidance for the same reason.
    "echo 'vm.max_map_count=262144' > /etc/sysctl.d/90-fjord.conf",
    'sysctl -q -p /etc/sysctl.d/90-fjord.conf',
    ...(b.tlsSecretArn === undefined ? [] : fetchTlsPem(b.tlsSecretArn)),
    ...heredoc('/etc/fjord/server.properties', serverProperties(b), { expand: true }),
    'chown root:fjord /etc/fjord/server.properties',
    'chmod 0640 /etc/fjord/server.properties',
    ...heredoc('/usr/local/sbin/fjord-scram-user', SCRAM_USER_SH),
    'chmod 0750 /usr/local/sbin/fjord-scram-user',
    ...heredoc('/etc/systemd/system/fjord.service', fjordUnit(b.nodeId)),
    ...heredoc('/etc/systemd/system/fjord-scram-user.service', SCRAM_UNIT),
    'systemctl daemon-reload',
    'systemctl enable --now fjord.service',
    // A oneshot that may wait for the quorum: start it without blocking cloud-init.
    'systemctl enable fjord-scram-user.service',
    'systemctl start --no-block fjord-scram-user.service',
    'echo "fjord-boot: broker $NODE_ID started"',
  ];
}

/**
 * `cat > path <<'EOF' … EOF`. Quoted by default, so the lines are written as
 * they are; `expand` lets the shell expand `$VAR` (server.properties' rack).
 */
function heredoc(path: string, lines: string[], opts: { expand?: boolean } = {}): string[] {
  const tag = 'FJORD_EOF';
  if (lines.some((l) => l === tag)) throw new Error(`${path}: a line equals the heredoc delimiter`);
  return [`cat > ${path} <<${opts.expand === true ? tag : `'${tag}'`}`, ...lines, tag];
}

// Helpers for the boot script and the SCRAM unit. IMDSv2 only (the launch
// template requires tokens).
const LIB_SH = [
  'imds() {',
  '  local token',
  "  token=$(curl -sSf -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 300' http://169.254.169.254/latest/api/token)",
  '  curl -sSf -H "X-aws-ec2-metadata-token: $token" "http://169.254.169.254/latest/meta-data/$1"',
  '}',
  '# retry SECONDS COMMAND...: run COMMAND every 5 s until it succeeds, for at most SECONDS.',
  'retry() {',
  '  local deadline=$((SECONDS + $1))',
  '  shift',
  '  until "$@"; do',
  '    if [ "$SECONDS" -ge "$deadline" ]; then echo "fjord: gave up on: $*" >&2; return 1; fi',
  '    sleep 5',
  '  done',
  '}',
];

function fetchBinary(src: BrokerBoot['binary']): string[] {
  const tmp = '/usr/local/bin/fjord.download';
  switch (src.kind) {
    case 'none':
      return [
        'echo "fjord-boot: no fjord binary was configured; deploy with -c fjordBinary=PATH or -c fjordBinaryUrl=URL (deploy/aws/README.md)" >&2',
        'exit 1',
      ];
    case 'asset':
      if (src.s3Url === undefined) throw new Error('an asset binary needs its s3:// URL');
      return [`retry 300 aws s3 cp --only-show-errors '${src.s3Url}' ${tmp}`, ...installBinary(tmp)];
    case 'url': {
      const get = src.url.startsWith('s3://')
        ? `retry 300 aws s3 cp --only-show-errors '${src.url}' ${tmp}`
        : `retry 300 curl -fsSL -o ${tmp} '${src.url}'`;
      const check = src.sha256 === undefined ? [] : [`echo '${src.sha256}  ${tmp}' | sha256sum -c -`];
      return [get, ...check, ...installBinary(tmp)];
    }
  }
}

function installBinary(tmp: string): string[] {
  return [`install -m 0755 ${tmp} /usr/local/bin/fjord`, `rm -f ${tmp}`, '/usr/local/bin/fjord --version'];
}

// The broker's identity is its ENI (fixed IP) and its volume (its log and
// raft state), both outside the instance. A replacement instance takes them
// over once the one it replaces has let go, hence the long retries.
const ATTACH_ENI = [
  'eni_here() { [ "$(aws ec2 describe-network-interfaces --network-interface-ids "$ENI_ID" --query "NetworkInterfaces[0].Attachment.InstanceId" --output text)" = "$INSTANCE_ID" ]; }',
  'attach_eni() { eni_here || aws ec2 attach-network-interface --network-interface-id "$ENI_ID" --instance-id "$INSTANCE_ID" --device-index 1 >/dev/null; }',
  'ip_up() { ip -4 -o addr show | grep -q " inet $BROKER_IP/"; }',
  'retry 900 attach_eni',
  // amazon-ec2-net-utils configures the second ENI, with its own route table.
  'retry 180 ip_up',
];

const ATTACH_VOLUME = [
  'volume_here() { [ "$(aws ec2 describe-volumes --volume-ids "$VOLUME_ID" --query "Volumes[0].Attachments[0].InstanceId" --output text)" = "$INSTANCE_ID" ]; }',
  'attach_volume() { volume_here || aws ec2 attach-volume --volume-id "$VOLUME_ID" --instance-id "$INSTANCE_ID" --device /dev/sdf >/dev/null; }',
  'retry 900 attach_volume',
  // Nitro instances name NVMe volumes by serial: the volume id without its dash.
  'DATA_DEV=/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_$(echo "$VOLUME_ID" | tr -d -)',
  'retry 180 test -b "$DATA_DEV"',
  // mkfs.xfs without -f refuses a device that holds a file system, so a
  // volume with data is never formatted, even if blkid failed.
  'if ! blkid "$DATA_DEV" >/dev/null 2>&1; then mkfs.xfs -q -L fjord-data "$DATA_DEV"; fi',
  'DATA_UUID=$(blkid -s UUID -o value "$DATA_DEV")',
  `install -d ${DATA_MOUNT}`,
  `grep -q "UUID=$DATA_UUID " /etc/fstab || echo "UUID=$DATA_UUID ${DATA_MOUNT} xfs defaults,noatime,nofail 0 2" >> /etc/fstab`,
  'systemctl daemon-reload',
  `mountpoint -q ${DATA_MOUNT} || mount ${DATA_MOUNT}`,
];

function fetchTlsPem(arn: string): string[] {
  return [
    `retry 300 aws secretsmanager get-secret-value --secret-id '${arn}' --query SecretString --output text > ${TLS_PEM}.new`,
    `grep -q 'PRIVATE KEY-----' ${TLS_PEM}.new || { echo "fjord-boot: the TLS secret holds no PEM private key" >&2; exit 1; }`,
    `install -m 0640 -o root -g fjord ${TLS_PEM}.new ${TLS_PEM}`,
    `rm -f ${TLS_PEM}.new`,
  ];
}

function fjordUnit(nodeId: number): string[] {
  return [
    '[Unit]',
    `Description=Fjord broker ${nodeId} (Kafka-compatible)`,
    'Wants=network-online.target',
    'After=network-online.target',
    `RequiresMountsFor=${DATA_MOUNT}`,
    '',
    '[Service]',
    'User=fjord',
    'Group=fjord',
    'ExecStart=/usr/local/bin/fjord start --config /etc/fjord/server.properties',
    'Restart=always',
    'RestartSec=5',
    // Exit 2 is a config error: restarting cannot fix it.
    'RestartPreventExitStatus=2',
    'LimitNOFILE=1048576',
    // SIGTERM is a controlled shutdown: leadership is handed over first.
    'KillSignal=SIGTERM',
    'TimeoutStopSec=60',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
  ];
}

const SCRAM_UNIT = [
  '[Unit]',
  'Description=Fjord: set the SCRAM-SHA-512 user from Secrets Manager',
  'Wants=network-online.target fjord.service',
  'After=network-online.target fjord.service',
  '',
  '[Service]',
  'Type=oneshot',
  'ExecStart=/usr/local/sbin/fjord-scram-user',
  'TimeoutStartSec=45min',
  '',
  '[Install]',
  'WantedBy=multi-user.target',
];

// Fjord keeps SCRAM credentials in its cluster metadata and makes them as
// Kafka does: AlterUserScramCredentials, sent here by Kafka's own
// kafka-configs over the INTERNAL listener (what broker/tests/privatelink.rs
// does). It runs at every boot on every broker; each run sets the same
// password, so the last write wins harmlessly and a rotated secret takes
// effect at the next boot.
const SCRAM_USER_SH = [
  '#!/bin/bash',
  'set -euo pipefail',
  '. /etc/fjord/boot.env',
  '. /usr/local/lib/fjord/lib.sh',
  'install_tools() {',
  '  [ -x /opt/kafka/bin/kafka-configs.sh ] && return 0',
  '  dnf install -y -q java-21-amazon-corretto-headless',
  '  curl -fsSL -o /tmp/kafka-tools.tgz "$KAFKA_TOOLS_URL"',
  '  if [ -n "$KAFKA_TOOLS_SHA512" ]; then echo "$KAFKA_TOOLS_SHA512  /tmp/kafka-tools.tgz" | sha512sum -c -; fi',
  '  rm -rf /opt/kafka.new && install -d /opt/kafka.new',
  '  tar -xzf /tmp/kafka-tools.tgz -C /opt/kafka.new --strip-components=1',
  '  rm -rf /opt/kafka && mv /opt/kafka.new /opt/kafka && rm -f /tmp/kafka-tools.tgz',
  '}',
  'retry 900 install_tools',
  'creds=$(retry 300 aws secretsmanager get-secret-value --secret-id "$SCRAM_SECRET_ARN" --query SecretString --output text)',
  `user=$(printf '%s' "$creds" | python3 -c 'import json, sys; print(json.load(sys.stdin)["username"])')`,
  `password=$(printf '%s' "$creds" | python3 -c 'import json, sys; print(json.load(sys.stdin)["password"])')`,
  // kafka-configs splits its value on ',' '=' and brackets.
  '[[ $user =~ ^[A-Za-z0-9._-]+$ ]] || { echo "fjord-scram-user: the username in the secret has characters kafka-configs cannot pass" >&2; exit 1; }',
  '[[ $password =~ ^[A-Za-z0-9]+$ ]] || { echo "fjord-scram-user: the password in the secret must be letters and digits only" >&2; exit 1; }',
  'export KAFKA_HEAP_OPTS=-Xmx256m',
  'add_user() {',
  `  /opt/kafka/bin/kafka-configs.sh --bootstrap-server "$BROKER_IP:${PORTS.internal}" --alter \\`,
  '    --add-config "SCRAM-SHA-512=[password=$password]" --entity-type users --entity-name "$user"',
  '}',
  // The quorum needs two brokers up; the first may wait for the others.
  'retry 2400 add_user',
  'echo "fjord-scram-user: SCRAM-SHA-512 credentials of $user are set"',
];
