/**
 * What one audit entry costs, apart from everything else a message costs: `AuditLog.append` of
 * batches of `message.accepted` events joined to a vault transaction, as the batching writer does
 * it, on a real vault.db file (8 KiB pages, the vault's pragmas). Prints entries per second and the
 * CPU per entry on the main thread (validation, RFC 8785 leaf data, leaf and node hashes, the
 * sqlite3 binding's parameters) and on the other threads (SQLite on libuv's pool, GC helpers).
 *
 *   make build && node dist/bench/experiments/audit-append.js
 *   BENCH_BATCH=170 BENCH_ROUNDS=200 node --cpu-prof dist/bench/experiments/audit-append.js
 *
 * Knobs: BENCH_BATCH (170 entries per transaction, about what the writer commits at once under
 * bench/messages' batched load), BENCH_ROUNDS (200). Not run by `make bench`; the answer is in
 * bench/README.md ("Thirteenth session").
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditLog } from '../../server/audit/log.js';
import { Db } from '../../server/vault/db.js';
import { procThreadCpuSeconds } from '../lib/load.js';

const BATCH = Number(process.env.BENCH_BATCH ?? 170);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 200);

/** Events shaped as messaging's (server/messaging/index.ts), their random parts drawn up front. */
function events(from: number): { type: string; actor: string; subject: string; at: Date; data: Record<string, unknown> }[] {
  const r = randomBytes(BATCH * 64).toString('hex');
  return Array.from({ length: BATCH }, (_, j) => ({
    type: 'message.accepted',
    actor: `user${(from + j) % 10}`,
    subject: r.slice(j * 128, j * 128 + 64),
    at: new Date(),
    // In canonical key order, as messaging builds them: the leaf's text is then one JSON.stringify.
    data: { header: r.slice(j * 128 + 64, j * 128 + 128), label: 'restricted', seq: from + j },
  }));
}

const dir = mkdtempSync(join(tmpdir(), 'sigil-audit-append-'));
try {
  const db = await Db.open(join(dir, 'vault.db'), { pageSize: 8192 });
  const log = await AuditLog.open(db);
  let n = 0;
  const round = async (): Promise<void> => {
    const evs = events(n);
    n += evs.length;
    await db.transaction(async () => {
      await log.append(evs, { join: true });
    });
  };
  for (let i = 0; i < 20; i++) await round(); // warm: statements prepared, code optimised
  const pending = Array.from({ length: ROUNDS }, (_, i) => events(i * BATCH));
  const before = procThreadCpuSeconds(process.pid);
  const t0 = performance.now();
  for (const evs of pending) {
    await db.transaction(async () => {
      await log.append(evs, { join: true });
    });
  }
  const secs = (performance.now() - t0) / 1000;
  const after = procThreadCpuSeconds(process.pid);
  await db.close();
  const entries = ROUNDS * BATCH;
  const main = (after.main - before.main) * 1000;
  const others = (after.others - before.others) * 1000;
  console.log(`audit-append: ${entries} message.accepted entries, ${BATCH} per transaction; node ${process.version}`);
  console.log(`rate      ${(entries / secs).toFixed(0)} entries/s (${secs.toFixed(2)} s)`);
  console.log(`CPU       main thread ${((main * 1000) / entries).toFixed(1)} µs per entry, other threads ${((others * 1000) / entries).toFixed(1)} µs per entry`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
