// The SCRAM credentials: a generated secret under a customer-managed key,
// readable by every broker, and the script that turns it into a Fjord user.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { allowedResources, brokers, resources, roleStatements, synth, target, text } from './helpers';

describe('SCRAM secret', () => {
  const { cluster } = synth();
  const secrets = resources(cluster, 'AWS::SecretsManager::Secret');

  it('is generated as {username, password}, letters and digits, under a KMS key of the stack', () => {
    assert.equal(secrets.length, 1);
    const [[, s]] = secrets;
    const gen = s.Properties.GenerateSecretString;
    assert.deepEqual(JSON.parse(gen.SecretStringTemplate), { username: 'fjord-client' });
    assert.equal(gen.GenerateStringKey, 'password');
    assert.equal(gen.ExcludePunctuation, true);
    assert.equal(gen.IncludeSpace, false);
    const keyId = target(s.Properties.KmsKeyId);
    assert.equal(cluster.findResources('AWS::KMS::Key')[keyId].Properties.EnableKeyRotation, true);
  });

  it('can be read by each broker role, and the key decrypts it for them through Secrets Manager', () => {
    const [[secretId]] = secrets;
    const views = brokers(cluster);
    assert.equal(new Set(views.map((b) => b.roleId)).size, 3, 'one role per broker');
    const [[, key]] = resources(cluster, 'AWS::KMS::Key');
    const decrypters = key.Properties.KeyPolicy.Statement.filter(
      (st: { Action: string | string[] }) => ([] as string[]).concat(st.Action).includes('kms:Decrypt'),
    ).flatMap((st: { Principal: { AWS: unknown } }) => ([] as unknown[]).concat(st.Principal.AWS).map(text));
    for (const b of views) {
      assert.deepEqual(
        allowedResources(roleStatements(cluster, b.roleId), 'secretsmanager:GetSecretValue'),
        [`{Ref:${secretId}}`],
        `${b.roleId} reads the SCRAM secret, and only it`,
      );
      assert.ok(decrypters.includes(`{GetAtt:${b.roleId}.Arn}`), `${b.roleId} may decrypt`);
      assert.match(b.userData, new RegExp(`\\nSCRAM_SECRET_ARN='\\{Ref:${secretId}\\}'\\n`));
    }
  });

  it("is made a Fjord user with Kafka's kafka-configs over INTERNAL, at every boot", () => {
    for (const b of brokers(cluster)) {
      assert.match(b.userData, /\/opt\/kafka\/bin\/kafka-configs\.sh --bootstrap-server "\$BROKER_IP:9092" --alter \\\n/);
      assert.match(b.userData, /--add-config "SCRAM-SHA-512=\[password=\$password\]" --entity-type users --entity-name "\$user"/);
      assert.match(b.userData, /aws secretsmanager get-secret-value --secret-id "\$SCRAM_SECRET_ARN"/);
      assert.match(b.userData, /\nsystemctl enable fjord-scram-user\.service\n/);
    }
  });

  it('takes its name from -c scramSecretName', () => {
    const { cluster: t } = synth({ scramSecretName: 'AmazonMSK_fjord' });
    const [[, s]] = resources(t, 'AWS::SecretsManager::Secret');
    assert.equal(s.Properties.Name, 'AmazonMSK_fjord');
  });
});
