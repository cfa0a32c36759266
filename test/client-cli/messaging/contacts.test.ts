/**
 * `sigil contacts` with the built CLI against a real appliance: the active people as a tree by
 * department, ranked people first, with aligned logins, ranks and non-staff roles, a department
 * filter that ignores case, the JSON form, a disabled account gone, and one line for an empty
 * department.
 */
import t from 'tap';
import { ensureCliBuilt } from '../../helpers/cli.js';
import { tmpDir } from '../../helpers/tmp.js';
import { httpHarness } from '../../server/messaging/http-harness.js';
import { cliUser } from './helpers/users.js';

const { app } = await httpHarness(t);
const dir = tmpDir(t, 'sigil-cli-contacts-');
const alee = await cliUser(app, dir, 'alee', 'secret', { fullName: 'Anna Lee', department: 'Ops' });
await cliUser(app, dir, 'bkim', 'confidential', { fullName: 'Bo Kim', department: 'ops' });
await app.createStaff({ login: 'auditor1', clearance: 'restricted', fullName: 'Ada Ito', department: 'Audit', role: 'auditor' });
// bkim outranks alee in Ops: by the rank, not the name (no `ranks` configured: ranks by text, then none).
for (const [login, rank] of [['bkim', 'Colonel'], ['officer', 'Chief security officer']]) {
  const r = await app.request(`/v1/users/${login}/name`, { token: app.officer.token, body: { rank } });
  if (r.status !== 200) throw new Error(`rank ${login}: ${JSON.stringify(r.body)}`);
}
ensureCliBuilt();

t.test('when staff list contacts then they see a tree by department with the logins to write to', async (t) => {
  const r = await alee.cli.run(['contacts']);
  t.equal(r.code, 0, r.stderr);
  t.equal(
    r.stdout,
    [
      'Audit',
      '  auditor1  Ada Ito (auditor)',
      'ops', // bkim's spelling: the first person of a department names it
      '  bkim      Bo Kim, Colonel',
      '  alee      Anna Lee',
      'Security',
      '  officer   Security Officer, Chief security officer (officer)',
      '',
    ].join('\n'),
  );
  t.notMatch(r.stdout, /secret|confidential|restricted/i, 'no clearance is shown');
});

t.test('when a department is given then only its people, whatever the case; none is one line on stderr', async (t) => {
  const r = await alee.cli.run(['contacts', '--department', 'OPS']);
  t.equal(r.stdout, 'ops\n  bkim  Bo Kim, Colonel\n  alee  Anna Lee\n');
  t.same(await alee.cli.json(['contacts', '--department', 'audit']), {
    people: [{ login: 'auditor1', fullName: 'Ada Ito', department: 'Audit', role: 'auditor' }],
  });
  const none = await alee.cli.run(['contacts', '--department', 'Nowhere']);
  t.equal(none.code, 0);
  t.equal(none.stdout, '');
  t.equal(none.stderr, 'no one in Nowhere\n');
});

t.test('when an account is disabled then it is no longer a contact', async (t) => {
  t.equal((await app.request('/v1/users/bkim/disable', { token: app.officer.token, method: 'POST' })).status, 200);
  const r = await alee.cli.json(['contacts']);
  t.same(
    r.people.map((p: { login: string }) => p.login),
    ['auditor1', 'alee', 'officer'],
  );
});
