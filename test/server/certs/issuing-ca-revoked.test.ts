/**
 * Known gap until the twentieth session: after the root key ceremony revoked the issuing CA
 * (`sigil-server sign-root-crl --revoke-issuing --yes`, held beside the running server), the
 * server went on accepting and serving messages signed under it; only readers, checking the
 * whole chain, refused them. Now the server's root CRL watch notices (server/certs/root-crl-watch.ts):
 * every request with a certificate is refused with ISSUING_CA_REVOKED but those for the CA
 * certificates and CRLs, every session ends (open event streams close), the refusals are in the
 * audit trail, and a restart keeps refusing. A root CRL file the root did not sign changes nothing.
 *
 * Real appliance over real TLS, the ceremony as a child process; real time (the watch's timer).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { Certificate, createRootCrl, Crl } from '../../../pki/index.js';
import { initAppliance, loadConfig, openAppliance, PATHS, silentLogger, type StoredSecurityEvent } from '../../../server/index.js';
import { TEST_ARGON2 } from '../../helpers/appliance.js';
import { runServer } from '../../helpers/server-process.js';
import { tmpDir } from '../../helpers/tmp.js';
import { until } from '../../helpers/until.js';
import { appRootCrl, rootCrlOfAnotherRoot } from '../../client-cli/messaging/helpers/root-crl.js';
import { cliUser } from '../../client-cli/messaging/helpers/users.js';
import { httpHarness, openEvents } from '../messaging/http-harness.js';

// A 200 ms watch: the test sees the timer notice the ceremony, as the 10 s default would.
const h = await httpHarness(t, { rootCrlCheckEveryMs: 200, captureLogs: true });
const { app } = h;
// Each with a `sigil` profile too: the CLI's answer to the refusal is part of the contract.
const cliDir = tmpDir(t, 'sigil-ca-revoked-cli-');
const { user: alee, cli: aleeCli } = await cliUser(app, cliDir, 'alee', 'secret');
const { user: bkim } = await cliUser(app, cliDir, 'bkim', 'secret');
const A = h.as(alee);
const conv = (await A('/v1/conversations/direct', { body: { peer: bkim.login } })).body as { id: string };
const post = async (text: string) => {
  const m = await h.compose(alee, conv.id, text);
  return A('/v1/messages', { body: { header: m.header, signature: m.signature, body: m.body } });
};
const countMessages = async () => (await h.as(bkim)(`/v1/conversations/${conv.id}/messages?limit=100`)).body.messages?.length as number;

t.test('when a root CRL that the root did not sign lists the issuing CA then nothing changes', async (t) => {
  appRootCrl(app).replace(t, await rootCrlOfAnotherRoot(app.appliance.issuingCert.serialNumber));
  await until(() => app.logs.some((l) => /is not signed by the root CA .*it changes nothing/.test(l)), 5000, 'the watch reports the forged file');
  t.equal(app.appliance.rootCrlWatch?.revoked, undefined, 'the issuing CA stands');
  t.equal((await post('still served')).status, 201, 'messages are accepted as before');
  t.match((await app.request('/v1/health', { cert: alee.certPem, key: alee.keyPem })).body, { ok: true }, 'health is ok');
});

t.test('when the ceremony revokes the issuing CA then the running server refuses every certificate but for the CA and CRLs', async (t) => {
  t.equal((await post('before the ceremony')).status, 201, 'control: accepted before');
  const stored = await countMessages();
  const es = await openEvents(h, bkim);
  t.teardown(() => es.close());
  await es.until((evs) => evs.some((e) => e.event === 'ready'));

  const passFile = join(tmpDir(t, 'sigil-ca-revoked-'), 'root-pass.txt');
  writeFileSync(passFile, `${app.init.ca.rootKeyPassphrase}\n`, { mode: 0o600 });
  const c = await runServer(['sign-root-crl', '--data', app.dataDir, '--root-key', app.init.ca.rootKeyFile, '--passphrase-file', passFile, '--revoke-issuing', '--yes', '--json'], {}, 90_000);
  t.equal(c.code, 0, c.stderr);
  const crlNumber = JSON.parse(c.stdout).crlNumber as number;

  await until(() => app.appliance.rootCrlWatch?.revoked !== undefined, 5000, 'the watch notices the ceremony');
  t.match(app.appliance.rootCrlWatch!.revoked, { serial: app.appliance.issuingCert.serialNumber, crlNumber });
  t.equal(app.logs.filter((l) => /"level":"error".*revokes the issuing CA/.test(l)).length, 1, 'one error line in the log');

  await es.until(() => es.ended, 5000);
  t.ok(es.ended, 'the open event stream ended with its session');

  const sent = await post('after the ceremony');
  t.equal(sent.status, 401);
  t.equal(sent.body.error?.code, 'ISSUING_CA_REVOKED');
  t.match(sent.body.error?.message, new RegExp(`issuing CA \\(serial ${app.appliance.issuingCert.serialNumber}\\) is revoked by root CRL ${crlNumber}`));
  const cli = await aleeCli.run(['send', 'bkim'], { input: 'after the ceremony, from the CLI' });
  t.equal(cli.code, 4, 'the CLI exits as refused authentication');
  t.equal(cli.stderr.trim().split('\n').length, 1, cli.stderr);
  t.match(cli.stderr, /^error: .*issuing CA \(serial [0-9a-f]+\) is revoked by root CRL/);
  const challenge = await app.request('/v1/auth/challenge', { body: { login: 'alee' }, cert: alee.certPem, key: alee.keyPem });
  t.equal(challenge.body.error?.code, 'ISSUING_CA_REVOKED', 'no new login either');
  const officer = await app.request('/v1/users', { token: app.officer.token });
  t.equal(officer.body.error?.code, 'ISSUING_CA_REVOKED', "the officer's certificate too");

  // What readers need to learn of it, and the CA certificates, are still served.
  const root = await app.request('/v1/crl/root', { cert: alee.certPem, key: alee.keyPem });
  t.equal(root.status, 200, JSON.stringify(root.body));
  t.ok(Crl.fromPem(root.body.crl as string).find(app.appliance.issuingCert.serialNumber), 'the served root CRL revokes the issuing CA');
  t.equal((await app.request('/v1/crl', { cert: alee.certPem, key: alee.keyPem })).status, 200);
  t.equal((await app.request('/v1/ca', { cert: alee.certPem, key: alee.keyPem })).status, 200);
  const health = await app.request('/v1/health', { cert: alee.certPem, key: alee.keyPem });
  t.match(health, { status: 200, body: { ok: false, issuingCaRevoked: { serial: app.appliance.issuingCert.serialNumber, crlNumber } } }, 'health says why');

  // Nothing was stored for the refused message (read through the appliance: the API refuses).
  t.equal(stored, 2, 'control: the two accepted messages');
  const rows = await app.appliance.vault.db.get<{ n: number }>('SELECT count(*) AS n FROM msg_messages WHERE conversation = ?', [conv.id]);
  t.equal(rows?.n, stored, 'the refused message is not in the vault');

  const sessions = await app.appliance.vault.db.all<{ end_reason: string | null }>('SELECT end_reason FROM sessions');
  t.ok(sessions.length >= 3);
  t.ok(
    sessions.every((s) => s.end_reason !== null),
    'every session ended',
  );
  t.ok(sessions.some((s) => s.end_reason === 'issuing-ca-revoked'));
  const refused = (await app.appliance.audit.list('certificate.refused' as StoredSecurityEvent['type'])).filter(
    (e) => (e.detail as { reason?: string } | undefined)?.reason === 'issuing-ca-revoked',
  );
  t.ok(refused.length >= 1, 'the refusals are in the audit trail');
});

t.test('when the appliance opens with a root CRL that revokes its issuing CA then it knows before serving; a later file does not lift it', async (t) => {
  const dataDir = join(tmpDir(t, 'sigil-ca-revoked-open-'), 'data');
  const init = await initAppliance({ dataDir, listen: '127.0.0.1:0', profile: 'p256', config: { argon2: TEST_ARGON2 } });
  const served = appRootCrl({ dataDir, init });
  const root = await served.rootSigner();
  const issuing = Certificate.fromPem(readFileSync(join(dataDir, PATHS.issuingCert), 'utf8'));
  const { file } = served;
  const config = await loadConfig(join(dataDir, PATHS.config));
  const openIt = () =>
    openAppliance({ dataDir, config, masterKey: { keyFilePath: join(dataDir, PATHS.masterKeyFile) }, log: silentLogger, rootCrlCheckEveryMs: 3_600_000 });
  // A session left open by the last run, stopped before the ceremony.
  const before = await openIt();
  t.equal(before.rootCrlWatch?.revoked, undefined, 'control: init\'s root CRL revokes nothing');
  await before.sessions.create('officer', 'ab'.repeat(32), '01', new Date(Date.now() + 3_600_000));
  await before.close();

  const revoked = [{ serialNumber: issuing.serialNumber, revocationDate: new Date(), reason: 'keyCompromise' as const }];
  writeFileSync(file, (await createRootCrl({ ...root, crlNumber: 2n, revoked })).pem);
  const a = await openIt();
  t.teardown(() => a.close());
  t.match(a.rootCrlWatch?.revoked, { serial: issuing.serialNumber, crlNumber: 2 }, 'known when open resolves');
  t.same(await a.vault.db.all('SELECT end_reason FROM sessions'), [{ end_reason: 'issuing-ca-revoked' }], 'the session left open is ended');

  // A root-signed file without the revocation (a copy put back by hand) does not lift it.
  writeFileSync(file, (await createRootCrl({ ...root, crlNumber: 3n })).pem);
  await a.rootCrlWatch!.check();
  t.match(a.rootCrlWatch!.revoked, { crlNumber: 2 }, 'still revoked, by the first CRL that said so');
});
