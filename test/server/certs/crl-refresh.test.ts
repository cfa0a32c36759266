/**
 * Review defect 1 (HIGH): the CRL was never republished. It was published at init and on a
 * revocation or `sigil crl publish` only, so once it passed its nextUpdate (crlValidityMs, 7 days)
 * every reader failed every new message (`crl-stale`). Now the running appliance republishes it
 * once it has used half its validity — at start, and on a timer — through the same publication
 * queue and code as a manual publish.
 *
 * Real appliance (init + open), real SQLite; only the appliance clock is faked.
 */
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { Crl, validateCertificate } from '../../../pki/index.js';
import { initAppliance, loadConfig, openAppliance, PATHS, silentLogger, type Appliance } from '../../../server/index.js';
import { TEST_ARGON2 } from '../../helpers/appliance.js';
import { tmpDir } from '../../helpers/tmp.js';

const DAY = 86_400_000;
const VALIDITY = 7 * DAY;
const T0 = new Date('2031-03-03T09:00:00.000Z');

/** A clock that moves only when told. */
function fakeClock(start: Date) {
  let ms = start.getTime();
  return { now: () => new Date(ms), advance: (by: number) => void (ms += by) };
}

async function setUp(t: Test, clock: ReturnType<typeof fakeClock>) {
  const dataDir = join(tmpDir(t, 'sigil-crl-refresh-'), 'data');
  await initAppliance({ dataDir, listen: '127.0.0.1:0', profile: 'p256', now: clock.now, config: { argon2: TEST_ARGON2, crlValidityMs: VALIDITY } });
  const config = await loadConfig(join(dataDir, PATHS.config));
  const open = (o: { crlCheckEveryMs?: number } = {}): Promise<Appliance> =>
    openAppliance({ dataDir, config, masterKey: { keyFilePath: join(dataDir, PATHS.masterKeyFile) }, now: clock.now, log: silentLogger, ...o });
  return { dataDir, open };
}

async function crlEvents(a: Appliance) {
  return (await a.audit.list('crl.published')).map((e) => ({ actor: e.actor, crlNumber: (e.detail as { crlNumber?: number } | undefined)?.crlNumber }));
}

t.test('when the appliance starts with a CRL past half its validity then it republishes it before serving', async (t) => {
  const clock = fakeClock(T0);
  const { open } = await setUp(t, clock);
  clock.advance(VALIDITY / 2 + 60_000); // stopped for 3.5 days and a minute
  const a = await open();
  t.teardown(() => a.close());
  const latest = await a.certificates.latestCrl();
  t.equal(latest?.number, 2, 'a second CRL was published at start');
  t.equal(latest?.thisUpdate.toISOString(), clock.now().toISOString(), 'at the appliance clock');
  t.equal(latest?.nextUpdate.getTime(), clock.now().getTime() + VALIDITY);
  t.same((await crlEvents(a)).at(-1), { actor: 'system', crlNumber: 2 }, 'audited like a manual publication');
});

t.test('when the appliance starts with a stale CRL (stopped for 8 days) then a fresh one is there before the first request', async (t) => {
  const clock = fakeClock(T0);
  const { open } = await setUp(t, clock);
  clock.advance(8 * DAY);
  const a = await open();
  t.teardown(() => a.close());
  const latest = await a.certificates.latestCrl();
  t.ok(latest && latest.nextUpdate > clock.now(), 'the CRL served is not stale');
  // A reader checking a staff certificate now, against what GET /v1/crl serves, is not told crl-stale.
  const v = await validateCertificate(a.auditCert, {
    trustAnchors: [a.rootCert],
    intermediates: [a.issuingCert],
    crls: [Crl.fromDer(latest!.der)],
    at: clock.now(),
    usage: 'audit',
  });
  t.ok(v.ok, v.ok ? 'the audit certificate validates now' : `${v.reason}: ${v.detail}`);
});

t.test('when the CRL is fresh at start then nothing is published', async (t) => {
  const clock = fakeClock(T0);
  const { open } = await setUp(t, clock);
  clock.advance(VALIDITY / 2 - 60_000);
  const a = await open();
  t.teardown(() => a.close());
  t.equal((await a.certificates.latestCrl())?.number, 1);
  t.equal((await crlEvents(a)).length, 1, 'only init published');
});

t.test('when the server runs past half the CRL validity then the timer republishes it, and stops at close', async (t) => {
  const clock = fakeClock(T0);
  const { open } = await setUp(t, clock);
  const a = await open({ crlCheckEveryMs: 20 });
  let closed = false;
  t.teardown(() => (closed ? undefined : a.close()));
  await new Promise((r) => setTimeout(r, 200));
  t.equal((await a.certificates.latestCrl())?.number, 1, 'fresh: the timer ticks but publishes nothing');

  clock.advance(VALIDITY / 2);
  const deadline = Date.now() + 20_000;
  while ((await a.certificates.latestCrl())?.number !== 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const second = await a.certificates.latestCrl();
  t.equal(second?.number, 2, 'republished once half the validity was used');
  t.equal(second?.thisUpdate.toISOString(), clock.now().toISOString());
  await new Promise((r) => setTimeout(r, 200));
  t.equal((await a.certificates.latestCrl())?.number, 2, 'and not again while the new one is fresh');

  clock.advance(VALIDITY / 2);
  while ((await a.certificates.latestCrl())?.number !== 3 && Date.now() < deadline + 20_000) await new Promise((r) => setTimeout(r, 20));
  t.equal((await a.certificates.latestCrl())?.number, 3, 'and again half a validity later');

  await a.close();
  closed = true;
  clock.advance(VALIDITY);
  t.equal(await a.crlRefresher?.tick(), undefined, 'after close no check runs (the vault is closed)');
  await new Promise((r) => setTimeout(r, 100)); // an interval still running would hit the closed vault and fail the test
});

t.test('when a manual publication and a due refresh overlap then they run one after the other and only one CRL follows', async (t) => {
  const clock = fakeClock(T0);
  const { open } = await setUp(t, clock);
  const a = await open();
  t.teardown(() => a.close());
  clock.advance(VALIDITY / 2 + 1000);
  const [manual, refreshed] = await Promise.all([
    a.certificateService.publishCrl('officer'),
    a.certificateService.refreshCrlIfDue(),
  ]);
  t.equal(manual.number, 2);
  t.equal(refreshed, undefined, 'the refresh saw the CRL just published and left it');
  t.same((await crlEvents(a)).map((e) => e.crlNumber), [1, 2]);

  clock.advance(VALIDITY / 2);
  const [r1, r2] = await Promise.all([a.certificateService.refreshCrlIfDue(), a.certificateService.refreshCrlIfDue()]);
  t.equal(r1?.number, 3);
  t.equal(r2, undefined, 'two due checks at once publish one CRL');
  t.same((await crlEvents(a)).at(-1), { actor: 'system', crlNumber: 3 });
});
