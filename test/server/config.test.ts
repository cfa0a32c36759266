import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { loadConfig, parseConfig } from '../../server/index.js';

t.test('when nothing is configured then the defaults of issue 3 apply', async (t) => {
  const c = parseConfig({});
  t.equal(c.listen, '127.0.0.1:8443');
  t.same(c.lockout, { maxFailures: 5, windowMs: 15 * 60_000, lockMs: 30 * 60_000 });
  t.equal(c.envelopeTtlMs, 7 * 24 * 3600_000);
  t.equal(c.nonceTtlMs, 60_000);
  t.ok(c.allowedPeers.includes('10.0.0.0/8'));
});

t.test('when a value is invalid then CONFIG_INVALID names the field', async (t) => {
  t.throws(() => parseConfig({ allowedPeers: ['300.0.0.0/8'] }), { code: 'CONFIG_INVALID', message: /allowedPeers/ });
  t.throws(() => parseConfig({ argon2: { memoryCost: 8 } }), { code: 'CONFIG_INVALID', message: /argon2\.memoryCost/ });
  t.throws(() => parseConfig({ logLevel: 'chatty' }), { code: 'CONFIG_INVALID', message: /logLevel/ });
});

t.test('when the config file is missing, not JSON or not an object then CONFIG_INVALID', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sigil-config-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  await t.rejects(loadConfig(join(dir, 'none.json')), { code: 'CONFIG_INVALID', message: /cannot read/ });
  writeFileSync(join(dir, 'bad.json'), '{');
  await t.rejects(loadConfig(join(dir, 'bad.json')), { code: 'CONFIG_INVALID', message: /not JSON/ });
  writeFileSync(join(dir, 'arr.json'), '3');
  await t.rejects(loadConfig(join(dir, 'arr.json')), { code: 'CONFIG_INVALID', message: /object/ });
  writeFileSync(join(dir, 'ok.json'), JSON.stringify({ listen: '10.0.0.1:9000' }));
  const c = await loadConfig(join(dir, 'ok.json'), { bodyLimit: 1000 });
  t.equal(c.listen, '10.0.0.1:9000');
  t.equal(c.bodyLimit, 1000);
});
