/**
 * Refused authentication reaches the audit trail without letting a flood grow it without bound
 * (auth/refusals.ts): one entry at the first refusal of a key in a window, one summary of the
 * repeats when the window ends, at most 64 keys apart per window and the rest counted together.
 * Real SQLite and the real Merkle audit log; only the clock is fake.
 */
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { AuditLog } from '../../../server/audit/index.js';
import { RefusalAudit, type Refusal } from '../../../server/auth/refusals.js';
import { AuditLogSink } from '../../../server/auth/security-events.js';
import { Db } from '../../../server/vault/index.js';
import { tmpDir } from '../../helpers/tmp.js';

const MIN = 60_000;
// 1 s into a 10-minute window.
const START = new Date('2026-12-01T08:00:01Z');

async function setup(t: Test, o: { maxKeys?: number } = {}) {
  const db = await Db.open(join(tmpDir(t), 'v.db'));
  t.teardown(() => db.close());
  const clock = { now: START };
  const sink = new AuditLogSink(await AuditLog.open(db, { now: () => clock.now }));
  const refusals = new RefusalAudit({ audit: sink, now: () => clock.now, ...o });
  t.teardown(() => refusals.close());
  const advance = (ms: number) => void (clock.now = new Date(clock.now.getTime() + ms));
  return { sink, refusals, advance };
}

const locked = (login: string, peer = '10.0.0.7'): Refusal => ({
  type: 'login.refused',
  reason: 'locked',
  actor: login,
  subject: login,
  detail: { certificate: '0a', peer },
});

t.test('when one login is refused again and again then one entry at once and one summary when the window ends', async (t) => {
  const { sink, refusals, advance } = await setup(t);
  await refusals.record(locked('dave'));
  t.equal((await sink.list('login.refused')).length, 1, 'the first refusal is in the trail before record resolves');
  for (let i = 0; i < 99; i++) {
    advance(1_000);
    await refusals.record(locked('dave'));
  }
  t.equal((await sink.list('login.refused')).length, 1, '99 more in the same window add nothing yet');
  advance(10 * MIN);
  await refusals.flush();
  const entries = await sink.list('login.refused');
  t.equal(entries.length, 2);
  t.match(entries[0], { actor: 'dave', subject: 'dave', detail: { reason: 'locked', count: 1, certificate: '0a', peer: '10.0.0.7' } });
  t.match(entries[1], { actor: 'dave', subject: 'dave', detail: { reason: 'locked', count: 99 } });
  t.equal(entries[1]!.detail!.from, new Date(START.getTime() + 1_000).toISOString(), 'from = the first repeat');
  t.equal(entries[1]!.detail!.to, new Date(START.getTime() + 99_000).toISOString(), 'to = the last');
});

t.test('when refusals of thousands of keys come in one window then at most 64 are kept apart and the rest counted together', async (t) => {
  const { sink, refusals, advance } = await setup(t);
  for (let i = 0; i < 5000; i++) await refusals.record(locked(`login-hmac:${i}`, `10.0.${i % 250}.1`));
  advance(10 * MIN);
  await refusals.flush();
  const entries = await sink.list('login.refused');
  t.ok(entries.length <= 2 * (64 + 15), `bounded: ${entries.length} entries for 5000 refusals`);
  t.equal(entries.filter((e) => e.detail?.overflow === true).length, 2, 'one overflow entry at once, one summary');
  const total = entries.reduce((n, e) => n + Number(e.detail?.count), 0);
  t.equal(total, 5000, 'the counts add up to every refusal');
  t.notOk(entries.some((e) => e.detail?.overflow === true && (e.subject !== undefined || e.detail?.peer !== undefined)), 'overflow entries name no one');
});

t.test('when the appliance closes then counts not yet summarised are written', async (t) => {
  const { sink, refusals } = await setup(t);
  for (let i = 0; i < 3; i++) await refusals.record(locked('erin'));
  await refusals.close();
  const entries = await sink.list('login.refused');
  t.same(entries.map((e) => e.detail?.count), [1, 2]);
  await refusals.record(locked('erin'));
  t.equal((await sink.list('login.refused')).length, 2, 'after close nothing more is recorded');
});
