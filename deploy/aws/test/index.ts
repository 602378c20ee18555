// All suites in one process: aws-cdk-lib takes seconds to load and warm up,
// and every test file would pay that again in a process of its own.
// `npm test` runs this file.

import './settings.test';
import './brokers.test';
import './nlb.test';
import './privatelink.test';
import './security-groups.test';
import './secret.test';
