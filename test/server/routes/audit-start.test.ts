/**
 * `sigil-server start` serves `/v1/audit` and runs the checkpointer: started in-process through
 * the real command (buildProgram), reached over real TLS with the first officer's certificate.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { exportPrivateKeyPem, openPkcs12 } from '../../../pki/index.js';
import { buildProgram, type MainIo } from '../../../server/main.js';
import { httpsRequest } from '../../helpers/appliance.js';
import { tmpDir } from '../../helpers/tmp.js';

const dir = tmpDir(t, 'sigil-audit-start-');
const dataDir = join(dir, 'data');
const out: string[] = [];
const io: MainIo = { stdout: (s) => void out.push(s), stderr: () => undefined, env: {}, onSignal: () => undefined };

t.test('when sigil-server starts then /v1/audit is mounted behind the session check', async (t) => {
  await buildProgram(io).parseAsync(['init', '--data', dataDir, '--listen', '127.0.0.1:0', '--json'], { from: 'user' });
  const init = JSON.parse(out.join(''));
  let started: { url: string; stop: () => Promise<void> } | undefined;
  const done = buildProgram(io, (s) => (started = s)).parseAsync(['start', '--data', dataDir], { from: 'user' });
  const deadline = Date.now() + 20_000;
  while (!started && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  t.ok(started, 'started');
  try {
    const p12 = await openPkcs12(new Uint8Array(readFileSync(init.officer.p12)), init.officer.p12Password);
    const ca = readFileSync(init.ca.chain, 'utf8');
    const opts = { cert: p12.cert.pem, key: await exportPrivateKeyPem(p12.key) };
    const audit = await httpsRequest(started!.url, '/v1/audit/checkpoint', ca, opts);
    t.equal(audit.status, 401);
    t.equal(audit.body.error.code, 'AUTH_REQUIRED', 'the route exists and asks for a session');
    const none = await httpsRequest(started!.url, '/v1/no-such-thing', ca, opts);
    t.equal(none.status, 404);
  } finally {
    await started?.stop();
    await done;
  }
});
