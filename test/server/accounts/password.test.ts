import t from 'tap';
import {
  checkNewPassword,
  DEFAULT_ARGON2,
  ENVELOPE_ALPHABET,
  ENVELOPE_PASSWORD_BITS,
  generateEnvelopePassword,
  parseConfig,
  PasswordHasher,
} from '../../../server/index.js';

t.test('when an envelope password is generated then it has ≥ 80 bits from an unambiguous alphabet', async (t) => {
  t.ok(ENVELOPE_PASSWORD_BITS >= 80, `${ENVELOPE_PASSWORD_BITS} bits`);
  for (const ch of '0O1lI') t.notOk(ENVELOPE_ALPHABET.includes(ch), `no ${ch}`);
  const seen = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const pw = generateEnvelopePassword();
    t.match(pw, /^[a-z0-9]{5}(-[a-z0-9]{5}){3}$/);
    for (const ch of pw.replace(/-/g, '')) if (!ENVELOPE_ALPHABET.includes(ch)) t.fail(`symbol ${ch} outside the alphabet`);
    seen.add(pw);
  }
  t.equal(seen.size, 200, 'no repeats');
});

t.test('when the random source is fixed then the password is exactly determined', async (t) => {
  t.equal(generateEnvelopePassword(() => 0), 'aaaaa-aaaaa-aaaaa-aaaaa');
  t.equal(generateEnvelopePassword((max) => max - 1), '99999-99999-99999-99999');
});

t.test('when hashing at the default configuration then the hash is argon2id with m ≥ 19456 KiB and t ≥ 2', async (t) => {
  const config = parseConfig({});
  t.same({ m: config.argon2.memoryCost, t: config.argon2.timeCost }, { m: 19456, t: 2 });
  const h = new PasswordHasher(config.argon2);
  const phc = await h.hash('correct horse battery staple');
  t.match(phc, /^\$argon2id\$v=19\$/, 'argon2id variant');
  const params = Object.fromEntries(phc.split('$')[3].split(',').map((kv) => kv.split('=')));
  t.ok(Number(params.m) >= 19456, `m=${params.m}`);
  t.ok(Number(params.t) >= 2, `t=${params.t}`);
  t.ok(await h.verify(phc, 'correct horse battery staple'));
  t.notOk(await h.verify(phc, 'correct horse battery stapler'));
  t.notOk(await h.verify('not a hash', 'x'), 'when the stored hash is malformed then verify says no');
  t.same(DEFAULT_ARGON2, { memoryCost: 19456, timeCost: 2, parallelism: 1 });
});

t.test('when hashes exceed the concurrency bound then they wait their turn', async (t) => {
  const h = new PasswordHasher({ memoryCost: 1024, timeCost: 1, parallelism: 1, concurrency: 1 });
  // With concurrency 1 the completion order is the submission order (FIFO).
  const order: number[] = [];
  await Promise.all([0, 1, 2, 3].map((i) => h.hash(`pw-${i}`).then(() => order.push(i))));
  t.same(order, [0, 1, 2, 3]);
});

t.test('password policy', async (t) => {
  t.throws(() => checkNewPassword('short-pw', { login: 'alice' }), { code: 'PASSWORD_WEAK', message: /at least 12/ });
  t.throws(() => checkNewPassword('xx-Alice-is-here', { login: 'alice' }), { code: 'PASSWORD_WEAK', message: /login/ });
  t.throws(() => checkNewPassword('abcde-fghjk-mnpqr', { login: 'bob', envelopePassword: 'abcde-fghjk-mnpqr' }), {
    code: 'PASSWORD_WEAK',
    message: /envelope/,
  });
  t.throws(() => checkNewPassword('x'.repeat(257), { login: 'bob' }), { code: 'PASSWORD_WEAK', message: /at most/ });
  t.doesNotThrow(() => checkNewPassword('a perfectly fine one', { login: 'bob' }));
});
