/**
 * Fault (issue 8): a request answered before its body has been read — an upload into a
 * conversation that does not exist, a body over the limit — leaves the connection usable: the
 * server reads the rest away (bounded) before it answers, so a keep-alive client's next request
 * succeeds on the same socket. A body past the bounds is answered with `Connection: close` and the
 * socket closed (server/middleware/unread-body.ts). Found by the disk-full test: once sessions
 * were served from memory, its 507 to an upload went out before the 2 MiB body had been sent,
 * and the client's next request met a reset connection.
 */
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { connect } from 'node:tls';
import t from 'tap';
import { createUser, initDataDir, officerOf, startServerProc, type ServerProc } from '../../bench/lib/load.js';
import { ensureServerBuilt } from '../helpers/server-process.js';

const NO_SUCH_CONVERSATION = 'AAAAAAAAAAAAAAAAAAAAAA';

t.test('when a request is answered before its body is read then the connection stays usable, or is closed past the bounds', async (t) => {
  ensureServerBuilt();
  let server: ServerProc | undefined;
  t.teardown(async () => {
    await server?.kill().catch(() => undefined);
  });
  const { init, dataDir } = await initDataDir({ profile: 'p256', config: { argon2: { memoryCost: 1024, timeCost: 1, parallelism: 1 } } });
  t.teardown(() => rmSync(dirname(dataDir), { recursive: true, force: true }));
  server = await startServerProc(dataDir);
  const officer = await officerOf(server.url, init, 1);
  const alice = await createUser(officer, { login: 'alice', clearance: 'secret', profile: 'p256' });

  for (let round = 0; round < 5; round++) {
    const upload = await alice.client
      .request(`/v1/files?conversation=${NO_SUCH_CONVERSATION}`, {
        raw: Buffer.alloc(8 * 1024 * 1024, 1),
        headers: { 'content-type': 'application/octet-stream' },
        timeoutMs: 30_000,
      })
      .catch((e: Error) => ({ status: -1, body: e.message, headers: {} as Record<string, string> }));
    t.equal(upload.status, 404, `round ${round}: the upload is refused (${JSON.stringify(upload.body).slice(0, 120)})`);
    t.not(upload.headers['connection'], 'close', 'its body was read away: the connection is kept');
    const next = await alice.client.request('/v1/me').catch((e: Error) => ({ status: -1, body: e.message }));
    t.equal(next.status, 200, `the next request on the same client succeeds (${JSON.stringify(next.body).slice(0, 120)})`);
  }
  const tooBig = await alice.client.request('/v1/users', { raw: Buffer.alloc(4 * 1024 * 1024, 0x20), timeoutMs: 30_000 });
  t.equal(tooBig.status, 413, 'a JSON body over the limit is refused');
  t.equal((await alice.client.request('/v1/me')).status, 200, 'and the client goes on');

  // Past the bounds: 300 MiB announced, 64 KiB sent. The answer comes at once and closes.
  const u = new URL(server.url);
  const sock = connect({ host: u.hostname, port: Number(u.port), ca: alice.client.caPem, cert: alice.client.certPem, key: alice.client.keyPem, minVersion: 'TLSv1.3' });
  await once(sock, 'secureConnect');
  let answer = '';
  sock.setEncoding('utf8').on('data', (d: string) => (answer += d));
  const closed = new Promise<void>((r) => sock.once('close', () => r()));
  sock.on('error', () => undefined);
  sock.write(
    `POST /v1/files?conversation=${NO_SUCH_CONVERSATION} HTTP/1.1\r\nHost: ${u.host}\r\nAuthorization: Bearer ${alice.client.token}\r\n` +
      `Content-Type: application/octet-stream\r\nContent-Length: ${300 * 1024 * 1024}\r\n\r\n`,
  );
  sock.write(Buffer.alloc(64 * 1024, 1));
  const timer = setTimeout(() => sock.destroy(), 10_000);
  await closed;
  clearTimeout(timer);
  t.match(answer, /^HTTP\/1\.1 404 /, 'the oversize upload is answered');
  t.match(answer, /\r\nconnection: close\r\n/i, 'with Connection: close');

  for (const c of [officer.client, alice.client]) c.close();
  t.equal(await server.stop(), 0, 'the server stops cleanly');
  server = undefined;
});
