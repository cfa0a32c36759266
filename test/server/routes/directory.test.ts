/**
 * `GET /v1/directory` over real TLS: every logged-in user sees the active people by department,
 * with login, name, department and role and nothing else (no clearance, no password or
 * certificate state); a disabled account leaves it; the department filter ignores case; bad
 * queries are 400s; no session is a 401.
 */
import t from 'tap';
import { startTestAppliance } from '../../helpers/appliance.js';

const a = await startTestAppliance();
t.teardown(() => a.stop());
const officer = { token: a.officer.token };
const alee = await a.createStaff({ login: 'alee', clearance: 'secret', fullName: 'Anna Lee', department: 'Ops' });
const bkim = await a.createStaff({ login: 'bkim', clearance: 'confidential', fullName: 'Bo Kim', department: 'Ops' });
await a.createStaff({ login: 'zed', clearance: 'restricted', fullName: 'Aaron Zed', department: 'Signals', role: 'auditor' });
// An account whose envelope is still sealed and that has no certificate yet is a person too.
const created = await a.request('/v1/users', { ...officer, body: { login: 'newbie', fullName: 'New Comer', department: 'ops', clearance: 'secret', role: 'staff' } });
t.equal(created.status, 201);
const as = (u: { token: string; cert: unknown; key: unknown }) => ({ token: u.token, cert: u.cert as never, key: u.key as never });

t.test('when staff ask the directory then they get the active people by department, name and login, without clearance', async (t) => {
  const r = await a.request('/v1/directory', as(bkim));
  t.equal(r.status, 200, JSON.stringify(r.body));
  t.same(r.body, {
    people: [
      // `Ops` and `ops` sort as one department, then by full name.
      { login: 'alee', fullName: 'Anna Lee', department: 'Ops', role: 'staff' },
      { login: 'bkim', fullName: 'Bo Kim', department: 'Ops', role: 'staff' },
      { login: 'newbie', fullName: 'New Comer', department: 'ops', role: 'staff' },
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
    ['alee', 'bkim', 'newbie'],
  );
  const none = await a.request('/v1/directory?department=Nowhere', as(alee));
  t.same(none.body, { people: [] });
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
