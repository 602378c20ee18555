// Builds the stacks of the app from its context, so tests can build exactly
// what `cdk synth` builds.

import { App } from 'aws-cdk-lib';

import { ClientStack } from './client-stack';
import { ClusterStack } from './cluster-stack';
import { readSettings } from './settings';

export interface FjordApp {
  cluster?: ClusterStack;
  client: ClientStack;
}

export function buildApp(app: App): FjordApp {
  const settings = readSettings(app.node);
  // An explicit env: synth never asks AWS which account or region it is in.
  const env = { account: settings.account, region: settings.region };
  if (settings.endpointServiceName !== undefined) {
    // A consumer elsewhere (another account): only its side.
    const client = new ClientStack(app, 'FjordClient', { env, settings, endpointServiceName: settings.endpointServiceName });
    return { client };
  }
  const cluster = new ClusterStack(app, 'FjordCluster', { env, settings });
  const client = new ClientStack(app, 'FjordClient', {
    env,
    settings,
    endpointServiceName: cluster.endpointService.vpcEndpointServiceName,
  });
  return { cluster, client };
}
