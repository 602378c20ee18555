// Builds the app as `cdk synth` does (cdk.json's context, plus overrides) and
// reads the templates. Assertions look at the synthesized CloudFormation,
// never at the constants the code was written with.

import * as fs from 'node:fs';
import * as path from 'node:path';

import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';

import { FjordApp, buildApp } from '../lib/app';

/** deploy/aws, from build/test/ or test/. */
export const ROOT = path.resolve(__dirname, __dirname.includes(`${path.sep}build${path.sep}`) ? '../..' : '..');

export function cdkJsonContext(): Record<string, unknown> {
  return JSON.parse(fs.readFileSync(path.join(ROOT, 'cdk.json'), 'utf8')).context;
}

export interface Synth {
  app: App;
  stacks: FjordApp;
  cluster: Template;
  client: Template;
}

let plain: Synth | undefined;

/** The app with cdk.json's context and `context` over it; the plain one is built once and shared. */
export function synth(context: Record<string, unknown> = {}): Synth {
  if (Object.keys(context).length === 0) return (plain ??= build({}));
  return build(context);
}

function build(context: Record<string, unknown>): Synth {
  // The `cdk synth` step of check.sh runs the validator; here it would only cost time.
  const app = new App({ context: { ...cdkJsonContext(), '@aws-cdk/core:validateAgainstDefaultRules': false, ...context } });
  const stacks = buildApp(app);
  if (stacks.cluster === undefined) throw new Error('no cluster stack: use synthClientOnly');
  return { app, stacks, cluster: Template.fromStack(stacks.cluster), client: Template.fromStack(stacks.client) };
}

export type Resource = { Type: string; Properties: Record<string, any>; [k: string]: any };

export function resources(t: Template, type: string): [string, Resource][] {
  return Object.entries(t.findResources(type)) as [string, Resource][];
}

/** A CloudFormation value as text: Fn::Join flattened, references as `{Ref:Id}` / `{GetAtt:Id.Attr}`. */
export function text(v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return String(v);
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, any>;
    if ('Fn::Join' in o) return (o['Fn::Join'][1] as unknown[]).map(text).join(o['Fn::Join'][0]);
    if ('Fn::Base64' in o) return text(o['Fn::Base64']);
    if ('Ref' in o) return `{Ref:${o.Ref}}`;
    if ('Fn::GetAtt' in o) return `{GetAtt:${o['Fn::GetAtt'].join('.')}}`;
  }
  return JSON.stringify(v);
}

/** `Ref` target of a value, or fails. */
export function ref(v: unknown): string {
  const o = v as Record<string, unknown>;
  if (o === null || typeof o !== 'object' || typeof o.Ref !== 'string') throw new Error(`not a Ref: ${JSON.stringify(v)}`);
  return o.Ref;
}

/** The logical id a `Fn::GetAtt [Id, GroupId]` or `Ref` points at. */
export function target(v: unknown): string {
  const o = v as Record<string, any>;
  if (o !== null && typeof o === 'object' && Array.isArray(o['Fn::GetAtt'])) return o['Fn::GetAtt'][0];
  return ref(v);
}

/** The value of `key=...` in a properties or env text, or undefined. */
export function setting(body: string, key: string): string | undefined {
  const line = body.split('\n').find((l) => l.startsWith(`${key}=`));
  return line?.slice(key.length + 1);
}

/** One broker as the cluster template describes it: its group, launch template, user data, subnet, ENI, volume. */
export interface BrokerView {
  groupId: string;
  subnetId: string;
  az: string;
  subnetCidr: string;
  userData: string;
  properties: string;
  launchTemplate: Resource;
  roleId: string;
}

export function brokers(t: Template): BrokerView[] {
  const subnets = t.findResources('AWS::EC2::Subnet');
  const templates = t.findResources('AWS::EC2::LaunchTemplate');
  const profiles = t.findResources('AWS::IAM::InstanceProfile');
  return resources(t, 'AWS::AutoScaling::AutoScalingGroup').map(([groupId, g]) => {
    const zoneIds = g.Properties.VPCZoneIdentifier as unknown[];
    if (zoneIds.length !== 1) throw new Error(`${groupId} spans ${zoneIds.length} subnets`);
    const subnetId = ref(zoneIds[0]);
    const lt = templates[ref(g.Properties.LaunchTemplate.LaunchTemplateId)] as Resource;
    const userData = text(lt.Properties.LaunchTemplateData.UserData);
    const profileId = target(lt.Properties.LaunchTemplateData.IamInstanceProfile.Arn);
    const roles = profiles[profileId].Properties.Roles as unknown[];
    if (roles.length !== 1) throw new Error(`${profileId} has ${roles.length} roles`);
    return {
      groupId,
      subnetId,
      az: subnets[subnetId].Properties.AvailabilityZone,
      subnetCidr: subnets[subnetId].Properties.CidrBlock,
      userData,
      properties: fileIn(userData, '/etc/fjord/server.properties'),
      launchTemplate: lt,
      roleId: ref(roles[0]),
    };
  });
}

/** The lines the boot script writes to `path` with a heredoc. */
export function fileIn(userData: string, path: string): string {
  const escaped = path.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  const m = new RegExp(`\ncat > ${escaped} <<'?FJORD_EOF'?\n([\\s\\S]*?)\nFJORD_EOF\n`).exec(userData);
  if (m === null) throw new Error(`the boot script writes no ${path}`);
  return m[1];
}

/** Whether an IPv4 address lies inside a CIDR. */
export function inCidr(ip: string, cidr: string): boolean {
  const toInt = (a: string) => a.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
  const [base, bits] = cidr.split('/');
  const size = 2 ** (32 - Number(bits));
  const start = toInt(base) - (toInt(base) % size);
  return toInt(ip) >= start && toInt(ip) < start + size;
}

export type Statement = { Action: string | string[]; Resource: unknown; Effect: string; Condition?: unknown };

/** Every statement of the policies attached to one role. */
export function roleStatements(t: Template, roleId: string): Statement[] {
  return resources(t, 'AWS::IAM::Policy')
    .filter(([, p]) => p.Properties.Roles.map(ref).includes(roleId))
    .flatMap(([, p]) => p.Properties.PolicyDocument.Statement);
}

/** The resources (as text) an Allow statement grants `action` on. */
export function allowedResources(statements: Statement[], action: string): string[] {
  return statements
    .filter((st) => st.Effect === 'Allow' && ([] as string[]).concat(st.Action).includes(action))
    .flatMap((st) => ([] as unknown[]).concat(st.Resource).map(text));
}
