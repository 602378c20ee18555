#!/usr/bin/env node
// The CDK app: the cluster stack and a consumer-VPC stack that reaches it over
// PrivateLink. `-c key=value` settings are listed in deploy/aws/README.md.

import { App } from 'aws-cdk-lib';

import { buildApp } from '../lib/app';

buildApp(new App());
