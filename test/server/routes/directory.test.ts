/**
 * `GET /v1/directory` over real TLS: every logged-in user sees the active people by department and
 * rank (the configured `ranks` first, highest first, then other ranks, then none), with login,
 * name, department, rank and role and nothing else (no clearance, no password or certificate
 * state); an officer sets and removes a rank; a disabled account leaves it; the department filter
 * ignores case; bad queries are 400s; no session is a 401. The order alone: `directoryOrder`.
 */
import t from 'tap';
import type { AccountRecord } from '../../../server/accounts/account-store.js';
import { directoryOrder } from '../../../server/routes/directory.js';
import { startTestAppliance } from '../../helpers/appliance.js';

const a = await startTestAppliance({ config: { ranks: ['Director', 'Head of unit'] } });
t.teardown(() => a.stop());
const officer = { token: a.officer.token };
const alee = await a.createStaff({ login: 'alee', clearance: 'secret', fullName: 'Anna Lee', department: 'Ops' });
// alee gets a configured rank by rename (the helper creates without one); newbie below gets one
// at creation that is not in `ranks`.
const ranked = await a.request('/v1/users/alee/name', { ...officer, body: { rank: 'Head of unit' } });
if (ranked.status !== 200) throw new Error(`rank: ${JSON.stringify(ranked.body)}`);
const bkim = await a.createStaff({ login: 'bkim', clearance: 'confidential', fullName: 'Bo Kim', department: 'Ops' });
await a.createStaff({ login: 'zed', clearance: 'restricted', fullName: 'Aaron Zed', department: 'Signals', role: 'auditor' });
// An account whose envelope is still sealed and that has no certificate yet is a person too.
const created = await a.request('/v1/users', {
  ...officer,
  body: { login: 'newbie', fullName: 'New Comer', department: 'ops', rank: 'Trainee', clearance: 'secret', role: 'staff' },
});
t.equal(created.status, 201);
t.match(created.body.account, { login: 'newbie', rank: 'Trainee' });
const as = (u: { token: string; cert: unknown; key: unknown }) => ({ token: u.token, cert: u.cert as never, key: u.key as never });

t.test('when people are ordered then department, configured rank, other rank, no rank, name', async (t) => {
  const person = (login: string, department: string, rank: string | null, fullName = login): AccountRecord =>
    ({ login, department, rank, fullName }) as AccountRecord;
  const people = [
    person('e', 'Ops', null, 'Eve'),
    person('c', 'ops', 'Attaché', 'Cy'),
    person('d', 'Ops', 'head of unit', 'Dee'),
    person('b', 'Ops', 'Director', 'Zed'),
    person('a', 'Audit', null, 'Al'),
    person('f', 'Ops', 'Analyst', 'Fay'),
    person('g', 'Ops', 'Director', 'Abe'),
  ];
  t.same(
    people.sort(directoryOrder(['Director', 'Head of unit'])).map((p) => p.login),
    ['a', 'g', 'b', 'd', 'f', 'c', 'e'],
  );
});

t.test('when staff ask the directory then they get the active people by department, name and login, without clearance', async (t) => {
  const r = await a.request('/v1/directory', as(bkim));
  t.equal(r.status, 200, JSON.stringify(r.body));
  t.same(r.body, {
    people: [
      // `Ops` and `ops` sort as one department; a configured rank, another rank, none.
      { login: 'alee', fullName: 'Anna Lee', department: 'Ops', rank: 'Head of unit', role: 'staff' },
      { login: 'newbie', fullName: 'New Comer', department: 'ops', rank: 'Trainee', role: 'staff' },
      { login: 'bkim', fullName: 'Bo Kim', department: 'Ops', role: 'staff' },
      { login: 'officer', fullName: 'Security Officer', department: 'Security', role: 'officer' },
      { login: 'zed', fullName: 'Aaron Zed', department: 'Signals', role: 'auditor' },
    ],
  });
  t.notMatch(JSON.stringify(r.body), /clearance|secret|password|envelope|certificate|locked/i);
});

t.test('when a department is asked then only its people come back, whatever the case', async (t) => {
  const r = await a.request('/v1/directory?department=OPS', as(alee));
  t.equal(r.status, 200);
  t.same(
    r.body.people.map((p: { login: string }) => p.login),
    ['alee', 'newbie', 'bkim'],
  );
  const none = await a.request('/v1/directory?department=Nowhere', as(alee));
  t.same(none.body, { people: [] });
});

t.test('when an officer removes a rank then the person moves to the end of the department; a bad rank is a 400', async (t) => {
  const r = await a.request('/v1/users/newbie/name', { ...officer, body: { rank: null } });
  t.equal(r.status, 200);
  t.notOk('rank' in r.body, 'the account shows no rank');
  const d = await a.request('/v1/directory?department=ops', as(alee));
  t.same(
    d.body.people.map((p: { login: string }) => p.login),
    ['alee', 'bkim', 'newbie'],
  );
  for (const rank of ['', 'x'.repeat(65), 'a<b', 7]) {
    const bad = await a.request('/v1/users/bkim/name', { ...officer, body: { rank } });
    t.equal(bad.status, 400, JSON.stringify(rank));
    t.equal(bad.body.error.code, 'BAD_REQUEST');
  }
  const staff = await a.request('/v1/users/bkim/name', { ...as(alee), body: { rank: 'Director' } });
  t.equal(staff.status, 403, 'only an officer sets a rank');
  const entries = await a.appliance.audit.list('account.renamed');
  t.match(entries.at(-1), { subject: 'newbie' });
  t.notMatch(JSON.stringify(entries), /Trainee|Head of unit/, 'the audit entry names the field, not the rank');
});

t.test('when an account is disabled then it leaves the directory, and comes back when enabled', async (t) => {
  t.equal((await a.request('/v1/users/zed/disable', { ...officer, method: 'POST' })).status, 200);
  const r = await a.request('/v1/directory', as(alee));
  t.notOk(r.body.people.some((p: { login: string }) => p.login === 'zed'));
  t.equal((await a.request('/v1/users/zed/enable', { ...officer, method: 'POST' })).status, 200);
  const back = await a.request('/v1/directory', as(alee));
  t.ok(back.body.people.some((p: { login: string }) => p.login === 'zed'));
});

t.test('when the query is bad or there is no session then a clear 4xx', async (t) => {
  for (const q of ['?department=', `?department=${'x'.repeat(65)}`, '?clearance=secret']) {
    const r = await a.request(`/v1/directory${q}`, as(alee));
    t.equal(r.status, 400, q);
    t.equal(r.body.error.code, 'BAD_REQUEST', q);
  }
  const anon = await a.request('/v1/directory', { cert: alee.cert, key: alee.key });
  t.equal(anon.status, 401);
  t.equal(anon.body.error.code, 'AUTH_REQUIRED');
});
