/**
 * Review of authentication and accounts (branch review-auth), over real TLS on 127.0.0.1. Each
 * test reproduces a defect found in review; where the overlap is a matter of timing, one step is
 * held open until the other request has finished, so the interleaving is the same on every run.
 */
import t from 'tap';
import { startTestAppliance, type TestUser } from '../../helpers/appliance.js';
import { holdNext, reachesHold } from '../../helpers/hold.js';

const a = await startTestAppliance();
t.teardown(() => a.stop());

const as = (u: TestUser) => ({ cert: u.certPem, key: u.keyPem });
const officer = () => ({ token: a.officer.token });

t.test('when an officer resets an account that another officer deletes meanwhile then ACCOUNT_NOT_FOUND, no 500 and no envelope left', async (t) => {
  const created = await a.request('/v1/users', {
    ...officer(),
    body: { login: 'gone', fullName: 'Gone Soon', department: 'Operations', clearance: 'restricted', role: 'staff' },
  });
  t.equal(created.status, 201);
  // The reset hashes its new envelope password before its transaction: the delete lands then.
  const hold = holdNext(t, a.appliance.hasher, 'hash');
  const reset = a.request('/v1/users/gone/reset', { method: 'POST', ...officer() });
  if (!(await reachesHold(t, hold, reset, 'the reset'))) return;
  const deleted = await a.request('/v1/users/gone', { method: 'DELETE', ...officer() });
  t.equal(deleted.status, 200, 'the delete went through');
  hold.release();
  const r = await reset;
  t.equal(r.status, 404, `the reset answers 404, not ${r.status}`);
  t.equal(r.body.error?.code, 'ACCOUNT_NOT_FOUND');
  t.equal(await a.appliance.accounts.pendingEnvelope('gone'), undefined, 'no envelope of the deleted login');
  t.same(
    (await a.appliance.audit.list('account.reset')).filter((e) => e.subject === 'gone'),
    [],
    'no account.reset entry for an account that is gone',
  );
});
