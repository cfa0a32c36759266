/**
 * Large-volume figures (issue 8): time to destroy a group of 1k, 10k and 100k messages and to
 * delete one message from it; time to fetch the newest page of a conversation with many messages
 * in the vault.
 *
 * The vault is filled IN-PROCESS through the messaging service (`createMessaging` over the opened
 * appliance, the batching writer, real per-message keys, seals and audit entries), not over HTTP.
 * To fill 100k+ messages in bounded time the signature check of the fill is replaced by an
 * accept-all verifier and every message carries the same (real) CMS signature of one template:
 * deletion and history never look at signatures, and every other step of acceptance runs as in
 * production. Deletion statements are really signed and verified.
 *
 * The machine's bound, in the same run (lib/bounds.ts): a plain table of the same row size in a
 * scratch database with the vault's pragmas — its newest page, and DELETE of a conversation of the
 * largest size plus the TRUNCATE checkpoint.
 *
 *   make build && node dist/bench/volume.js     # the sizes: 1k, 10k, 100k; history over 1M (~6 min)
 *   BENCH_QUICK=1 node dist/bench/volume.js     # 1k and 10k, history over the 10k (under a minute)
 *
 * Knobs: BENCH_SIZES (1000,10000,100000), BENCH_HISTORY (1000000: the conversation the newest
 * page is read from; one of the sizes, or filled as well), BENCH_QUICK=1 (sizes 1000,10000 and
 * history over 10000), BENCH_PROFILE (p256), BENCH_LAYOUT (interleaved: each group's messages spread
 * over the whole fill, as conversations running side by side; `sequential`: one group after the
 * other, the best case for a destroy and the only order before the ninth session).
 */
import { readFileSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { ProfileName } from '../pki/index.js';
import { sqliteBounds } from './lib/bounds.js';
import { loadConfig, openAppliance } from '../server/index.js';
import { messagingPartsFrom } from '../server/messaging/http.js';
import { canonicalHeader, createMessaging, type Messaging, type Principal } from '../server/messaging/index.js';
import {
  createUser,
  deleteRequest,
  initDataDir,
  machineNote,
  officerOf,
  sha384b64,
  signB64,
  startServerProc,
  type LoadUser,
} from './lib/load.js';
import { messageHeader } from './lib/signed-messages.js';

const PROFILE = (process.env.BENCH_PROFILE ?? 'p256') as ProfileName;
const QUICK = process.env.BENCH_QUICK === '1';
const SIZES = (process.env.BENCH_SIZES ?? (QUICK ? '1000,10000' : '1000,10000,100000')).split(',').map(Number);
const HISTORY_SIZE = Number(process.env.BENCH_HISTORY ?? (QUICK ? Math.max(...SIZES) : 1_000_000));
const IN_FLIGHT = 2048;

const ms = (t0: number): string => `${(performance.now() - t0).toFixed(1)} ms`;
/** Process CPU (main thread, SQLite's and WebCrypto's threads) since `c0`: the steadier figure on a shared machine. */
const cpu = (c0: NodeJS.CpuUsage): string => {
  const c = process.cpuUsage(c0);
  return `CPU ${((c.user + c.system) / 1000).toFixed(0)} ms (user ${(c.user / 1000).toFixed(0)}, system ${(c.system / 1000).toFixed(0)})`;
};

/** The 1, 5 and 15-minute load averages (the fill raises them; deletions are timed after it). */
const loadAverage = (): string => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

/**
 * The order the groups' messages arrive in: `interleaved` spreads each group's messages evenly over
 * the whole fill (smooth weighted round robin), as conversations that run side by side for months
 * do; `sequential` fills one group after the other — the best case for a destroy, since its rows
 * then lie together whatever the layout (the only order before the ninth session).
 */
const LAYOUT = process.env.BENCH_LAYOUT === 'sequential' ? 'sequential' : 'interleaved';

/** Conversation of each next message: every group gets its count, each spread evenly over the fill. */
function interleave(groups: readonly { id: string; n: number }[]): () => string {
  const total = groups.reduce((a, g) => a + g.n, 0);
  const credit = groups.map(() => 0);
  return () => {
    let best = 0;
    for (let k = 0; k < groups.length; k++) {
      credit[k]! += groups[k]!.n;
      if (credit[k]! > credit[best]!) best = k;
    }
    credit[best]! -= total;
    return groups[best]!.id;
  };
}

/**
 * Sends `n` messages from `u` through the service, `IN_FLIGHT` at a time, each into the
 * conversation `convOf()` names next. Returns their ids, by conversation.
 */
async function fill(messaging: Messaging, p: Principal, u: LoadUser, convOf: () => string, n: number): Promise<Map<string, string[]>> {
  const body = new TextEncoder().encode('b'.repeat(200));
  const digest = await sha384b64(body);
  const bodyB64 = Buffer.from(body).toString('base64');
  const template = await signB64(u, 'template', 'restricted');
  const ids = new Map<string, string[]>();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n) {
      next++;
      const conv = convOf();
      const id = Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString('base64url');
      const header = canonicalHeader(messageHeader(u.login, conv, { sha384: digest, size: body.length }, { id }));
      await messaging.send(p, { header, signature: template, body: bodyB64 });
      let list = ids.get(conv);
      if (!list) ids.set(conv, (list = []));
      list.push(id);
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  return ids;
}

async function main(): Promise<void> {
  console.log(`volume: sizes ${SIZES.join(', ')}; history over ${HISTORY_SIZE.toLocaleString('en')} messages${QUICK ? ' (BENCH_QUICK)' : ''}`);
  console.log(machineNote().replace('; the load generator and the server share this machine', '; everything runs in this one process'));
  const { dataDir, init } = await initDataDir({ profile: PROFILE, config: { argon2: { memoryCost: 1024, timeCost: 1, parallelism: 1 } } });
  let rowBytes = 0;
  let historyMs = NaN;
  const destroyMs = new Map<number, number>();
  try {
    // Accounts and certificates through the real server, then the server stops and we open the vault.
    const server = await startServerProc(dataDir);
    const officer = await officerOf(server.url, init, 1);
    const owner = await createUser(officer, { login: 'owner', clearance: 'secret', profile: PROFILE });
    officer.client.close();
    owner.client.close();
    await server.stop();

    const config = await loadConfig(join(dataDir, 'config.json'));
    const appliance = await openAppliance({ dataDir, config, masterKey: { keyFilePath: join(dataDir, 'secrets', 'master.key') } });
    const now = () => new Date();
    const parts = await messagingPartsFrom(appliance, now, { sweepIntervalMs: 0 }, () => undefined);
    const messaging = createMessaging({ ...parts, verify: async () => ({ ok: true, label: 'restricted' }) });
    await messaging.start();
    const p: Principal = { login: owner.login, role: 'staff', clearance: 'secret', certificate: owner.cert };
    try {
      const groups: { name: string; id: string; ids: string[] }[] = [];
      const sizes = [...SIZES];
      if (!sizes.includes(HISTORY_SIZE)) sizes.push(HISTORY_SIZE);
      const made = [];
      for (const n of sizes) made.push({ ...(await messaging.createGroup(p, { name: `vol-${n}`, label: 'restricted' })), n });
      const total = sizes.reduce((a, n) => a + n, 0);
      const f0 = performance.now();
      const filled = new Map<string, string[]>();
      if (LAYOUT === 'interleaved') {
        for (const [conv, ids] of await fill(messaging, p, owner, interleave(made), total)) filled.set(conv, ids);
      } else {
        for (const g of made) filled.set(g.id, (await fill(messaging, p, owner, () => g.id, g.n)).get(g.id) ?? []);
      }
      await messaging.flush();
      const secs = (performance.now() - f0) / 1000;
      console.log(
        `fill      ${total.toLocaleString('en')} messages into groups of ${sizes.map((n) => n.toLocaleString('en')).join(', ')}, ${LAYOUT}` +
          `${LAYOUT === 'interleaved' ? ' (each group\'s messages spread over the whole fill)' : ''}, in ${secs.toFixed(1)} s (${(total / secs).toFixed(0)}/s through the service)`,
      );
      for (const g of made) groups.push({ name: g.name, id: g.id, ids: filled.get(g.id) ?? [] });
      const mb = (f: string): string => {
        try {
          return `${(statSync(join(dataDir, 'vault', f)).size / 2 ** 20).toFixed(0)} MiB`;
        } catch {
          return 'none';
        }
      };
      console.log(`files     vault.db ${mb('vault.db')}, keys.db ${mb('keys.db')}; their WAL files ${mb('vault.db-wal')} and ${mb('keys.db-wal')}`);

      const row = await appliance.vault.db.get<{ b: number }>('SELECT avg(length(sealed)) AS b FROM msg_messages');
      rowBytes = Math.round(row?.b ?? 0);

      // History: newest page (50) of the largest conversation; first (cold) and the median of 20.
      const hist = groups.find((g) => g.ids.length === HISTORY_SIZE)!;
      let t0 = performance.now();
      const first = await messaging.history(p, hist.id, { limit: 50 });
      const cold = performance.now() - t0;
      const runs: number[] = [];
      for (let i = 0; i < 20; i++) {
        t0 = performance.now();
        await messaging.history(p, hist.id, { limit: 50 });
        runs.push(performance.now() - t0);
      }
      runs.sort((a, b) => a - b);
      historyMs = runs[10]!;
      console.log(`history   newest page (${first.messages.length} of ${HISTORY_SIZE.toLocaleString('en')} in the conversation, ${total.toLocaleString('en')} in the vault): first ${cold.toFixed(1)} ms, median of 20 ${runs[10]!.toFixed(1)} ms (in-process, no HTTP)`);

      // Delete one message from the largest group, then destroy each group.
      console.log(`load      average before the deletions: ${loadAverage()}`);
      const biggest = groups.reduce((a, b) => (a.ids.length >= b.ids.length ? a : b));
      // Three, one after another: the first also flushes what the fill left in both WALs.
      const victims = [2, 3, 1.5].map((d) => biggest.ids[Math.floor(biggest.ids.length / d)]!);
      const deletes: string[] = [];
      let c0 = process.cpuUsage();
      for (const victim of victims) {
        const one = await deleteRequest(owner, `message:${victim}`);
        c0 = process.cpuUsage();
        t0 = performance.now();
        await messaging.deleteMessage(p, victim, one);
        deletes.push(`${ms(t0)}, ${cpu(c0)}`);
      }
      console.log(`delete    one message from a group of ${biggest.ids.length.toLocaleString('en')}: ${deletes[0]} (rows, key, WAL truncation on both databases, tombstone)`);
      console.log(`          two more, one after the other: ${deletes.slice(1).join(' · ')}`);
      for (const g of groups) {
        const req = await deleteRequest(owner, `conversation:${g.id}`);
        c0 = process.cpuUsage();
        t0 = performance.now();
        const tomb = await messaging.deleteGroup(p, g.name, req);
        destroyMs.set(g.ids.length, performance.now() - t0);
        console.log(`destroy   group of ${String(g.ids.length).padStart(9)} messages: ${ms(t0)}, ${cpu(c0)} (tombstone count ${tomb.count})${g.ids.length >= 100_000 ? '  goal: 100k < 2 s' : ''}`);
      }
    } finally {
      await messaging.close();
      await appliance.close();
    }
  } finally {
    rmSync(dirname(dataDir), { recursive: true, force: true });
  }
  // The bound: the same engine, pragmas and row size with none of the vault's work around it.
  const n = Math.max(...SIZES);
  const b = await sqliteBounds(n, rowBytes);
  if (b.deleted !== n || b.pageRows !== Math.min(50, n)) throw new Error(`bound: deleted ${b.deleted} of ${n} rows, page of ${b.pageRows}: not the bound it claims to be`);
  const destroyed = [...destroyMs].find(([size]) => size >= n - 1)?.[1];
  console.log(`bound     plain table, ${rowBytes} B rows, vault pragmas: newest 50 of ${n.toLocaleString('en')} ${b.newestPageMs.toFixed(1)} ms (history / bound = ${(historyMs / b.newestPageMs).toFixed(1)}×); DELETE of ${n.toLocaleString('en')} rows + TRUNCATE checkpoint ${b.deleteAllMs.toFixed(1)} ms (destroy / bound = ${destroyed === undefined ? '?' : (destroyed / b.deleteAllMs).toFixed(1)}×)`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
