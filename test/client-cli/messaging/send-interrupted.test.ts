/**
 * `sigil send --file` as a real child process, stopped by a signal while its files upload: the
 * appliance is real, but the workstation reaches it through a TCP relay that stops passing the
 * client's bytes once a connection has carried 1 MiB, so the second (4 MiB) upload stalls half-way
 * after the first went through. SIGINT or SIGTERM then ends the send with exit 1 and one `error:`
 * line; no message is sent, and no upload is left pending on the appliance — the completed one is
 * discarded by the CLI, the cut one by the appliance.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { CLI_MAIN, ensureCliBuilt } from '../../helpers/cli.js';
import { tmpDir } from '../../helpers/tmp.js';
import { until } from '../../helpers/until.js';
import { httpHarness } from '../../server/messaging/http-harness.js';
import { pointProfileAt, stallingRelay } from './helpers/relay.js';
import { cliUser } from './helpers/users.js';

const { app } = await httpHarness(t);
const dir = tmpDir(t, 'sigil-cli-send-int-');
const alee = await cliUser(app, dir, 'alee', 'secret');
await cliUser(app, dir, 'bkim', 'secret');
ensureCliBuilt();

// alee's workstation talks to the appliance through the relay (same pinned CA, same session).
const relay = await stallingRelay(t, Number(new URL(app.url).port), { limit: 1 << 20, stall: 'upload' });
pointProfileAt(alee.cli.profile, relay.port);

const small = join(dir, 'small.bin');
writeFileSync(small, Buffer.alloc(10_000, 1));
const large = join(dir, 'large.bin');
writeFileSync(large, Buffer.alloc(4 << 20, 2));

const count = async (sql: string): Promise<number> => (await app.appliance.vault.db.get<{ n: number }>(sql))!.n;
const pending = (): Promise<number> => count(`SELECT COUNT(*) AS n FROM msg_files WHERE uploader = 'alee' AND state = 'pending'`);
const messages = (): Promise<number> => count('SELECT COUNT(*) AS n FROM msg_messages');

async function interrupted(signal: NodeJS.Signals) {
  const before = relay.stalled();
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
  await until(() => relay.stalled() > before, 30_000, () => `the upload to stall; stderr=${err}`);
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
