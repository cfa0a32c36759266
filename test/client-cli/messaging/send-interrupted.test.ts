/**
 * `sigil send --file` as a real child process, stopped by a signal while its files upload: the
 * appliance is real, but the workstation reaches it through a TCP relay that stops passing the
 * client's bytes once a connection has carried 1 MiB, so the second (4 MiB) upload stalls half-way
 * after the first went through. SIGINT or SIGTERM then ends the send with exit 1 and one `error:`
 * line; no message is sent, and no upload is left pending on the appliance — the completed one is
 * discarded by the CLI, the cut one by the appliance.
 */
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, connect, type Socket } from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { CLI_MAIN, ensureCliBuilt } from '../../helpers/cli.js';
import { tmpDir } from '../../helpers/tmp.js';
import { until } from '../../helpers/until.js';
import { httpHarness } from '../../server/messaging/http-harness.js';
import { cliUser } from './helpers/users.js';

const { app } = await httpHarness(t);
const dir = tmpDir(t, 'sigil-cli-send-int-');
const alee = await cliUser(app, dir, 'alee', 'secret');
await cliUser(app, dir, 'bkim', 'secret');
ensureCliBuilt();

const PASS_LIMIT = 1 << 20;
const sockets = new Set<Socket>();
let stalled = 0;
const relay = createServer((client) => {
  const upstream = connect(Number(new URL(app.url).port), '127.0.0.1');
  for (const s of [client, upstream]) {
    sockets.add(s);
    s.on('error', () => s.destroy());
    s.on('close', () => sockets.delete(s));
  }
  upstream.pipe(client);
  let passed = 0;
  // Past the limit the client's bytes are read and dropped, not paused: a paused socket would not
  // see the CLI's end either, and the appliance must see the connection go as a real one would.
  client.on('data', (d: Buffer) => {
    const room = PASS_LIMIT - passed;
    if (room > 0) upstream.write(d.subarray(0, room));
    if (passed < PASS_LIMIT && passed + d.length >= PASS_LIMIT) stalled++;
    passed += d.length;
  });
  client.on('close', () => upstream.destroy());
});
await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
t.teardown(() => {
  for (const s of sockets) s.destroy();
  relay.close();
});
// alee's workstation talks to the appliance through the relay (same pinned CA, same session).
const configFile = join(alee.cli.profile, 'config.json');
const config = JSON.parse(readFileSync(configFile, 'utf8')) as { server: string };
writeFileSync(configFile, JSON.stringify({ ...config, server: `https://127.0.0.1:${(relay.address() as { port: number }).port}` }, null, 2) + '\n');

const small = join(dir, 'small.bin');
writeFileSync(small, Buffer.alloc(10_000, 1));
const large = join(dir, 'large.bin');
writeFileSync(large, Buffer.alloc(4 << 20, 2));

const count = async (sql: string): Promise<number> => (await app.appliance.vault.db.get<{ n: number }>(sql))!.n;
const pending = (): Promise<number> => count(`SELECT COUNT(*) AS n FROM msg_files WHERE uploader = 'alee' AND state = 'pending'`);
const messages = (): Promise<number> => count('SELECT COUNT(*) AS n FROM msg_messages');

async function interrupted(signal: NodeJS.Signals) {
  const before = stalled;
  const child = spawn(process.execPath, [CLI_MAIN, '--profile', alee.cli.profile, 'send', 'bkim', '--file', small, '--file', large], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  child.stdin.end('the report, with its annexes');
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  child.stdout.resume();
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.on('close', (code, sig) => r({ code, signal: sig })));
  const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  // The large upload has stalled in the relay; the small one is on the appliance, pending.
  await until(() => stalled > before, 30_000, () => `the upload to stall; stderr=${err}`);
  await until(async () => (await pending()) === 2, 10_000, 'both uploads on the appliance');
  child.kill(signal);
  const result = await exit;
  clearTimeout(killer);
  return { ...result, stderr: err };
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  t.test(`when sigil send gets ${signal} while its files upload then it exits 1, sends nothing and leaves no upload pending`, async (t) => {
    const sent = await messages();
    const r = await interrupted(signal);
    t.equal(r.code, 1, r.stderr);
    t.equal(r.stderr, `error: send interrupted (${signal}); no message was sent and the files uploaded for it were discarded\n`);
    t.equal(await messages(), sent, 'no message');
    await until(async () => (await pending()) === 0, 15_000, 'no pending upload of alee');
    t.pass('the completed upload was discarded by the CLI and the cut one by the appliance');
  });
}
