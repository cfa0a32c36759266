import t from 'tap';
import { BadRequestError, ForbiddenError, mapError, STATUS_BY_CODE } from '../../server/index.js';

t.test('when a known domain code is thrown then its status and message are kept', async (t) => {
  const err = Object.assign(new Error('certificate 0a is revoked'), { code: 'CERT_REVOKED' });
  t.same(mapError(err, 'rid'), {
    status: 401,
    body: { error: { code: 'CERT_REVOKED', message: 'certificate 0a is revoked', requestId: 'rid' } },
    internal: false,
  });
  t.equal(mapError(new BadRequestError('login: required'), 'r').status, 400);
  t.equal(mapError(new ForbiddenError(['officer'], 'staff'), 'r').body.error.code, 'FORBIDDEN');
  t.equal(mapError(Object.assign(new Error('x'), { code: 'MALFORMED_INPUT' }), 'r').status, 400);
  t.equal(STATUS_BY_CODE.ACCOUNT_LOCKED, 423);
});

t.test('when an unknown error is thrown then 500 INTERNAL with a generic message and no detail', async (t) => {
  const m = mapError(new Error('SQLITE_CORRUPT at /var/lib/sigil/vault.db: secret detail'), 'rid');
  t.equal(m.status, 500);
  t.equal(m.internal, true);
  t.equal(m.body.error.code, 'INTERNAL');
  t.notMatch(m.body.error.message, /SQLITE|secret/);
  t.equal(mapError(Object.assign(new Error('odd'), { code: 'SOMETHING_NEW' }), 'r').status, 500, 'unknown codes are internal');
  t.equal(mapError('a string', 'r').status, 500);
  t.equal(mapError(Object.assign(new Error('x'), { code: 'UNAVAILABLE' }), 'r').status, 503);
});

t.test('when an error carries its own 4xx status and an unlisted code then that status is used', async (t) => {
  const m = mapError(Object.assign(new Error('not a member'), { code: 'NOT_A_MEMBER_X', status: 403 }), 'r');
  t.equal(m.status, 403);
  t.equal(m.body.error.code, 'NOT_A_MEMBER_X');
  t.equal(mapError(Object.assign(new Error('x'), { code: 'Y', status: 500 }), 'r').status, 500, 'a 5xx status stays internal');
});

t.test('issue 8 regression (disk full): when the vault is full then 507 VAULT_FULL with a clear message, not 500', async (t) => {
  const full = Object.assign(new Error('SQLITE_FULL: database or disk is full'), { code: 'VAULT_FULL' });
  const m = mapError(full, 'req-1');
  t.equal(m.status, 507);
  t.equal(m.internal, false);
  t.equal(m.body.error.code, 'VAULT_FULL');
  t.match(m.body.error.message, /storage is full; nothing was written/);
  t.notMatch(m.body.error.message, /SQLITE/, 'the internal cause is not echoed');
});
