import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import t from 'tap';
import { loadConfig, parseConfig } from '../../server/index.js';
import { runServer } from '../helpers/server-process.js';

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

// Regression (review: allowedPeers could widen the peer check to the whole Internet while --listen
// is held to the LAN rule): every allowedPeers entry must lie within one LAN range.
for (const cidr of ['0.0.0.0/0', '::/0', '8.8.8.0/24', '::ffff:8.8.8.8/128']) {
  t.test(`when allowedPeers holds ${cidr} then CONFIG_INVALID names the entry and the LAN rule`, async (t) => {
    const err = t.throws(() => parseConfig({ allowedPeers: ['10.0.0.0/8', cidr] }, 'D/config.json'), { code: 'CONFIG_INVALID' }) as Error;
    t.equal(err.message.split('\n').length, 1, 'one line');
    t.match(err.message, `invalid configuration in D/config.json: allowedPeers.1: ${cidr} is not within the LAN ranges`);
    t.match(err.message, /private 10\.0\.0\.0\/8, 172\.16\.0\.0\/12, 192\.168\.0\.0\/16, fc00::\/7/);
  });
}

t.test('when allowedPeers holds LAN ranges only then they are kept as written', async (t) => {
  t.same(parseConfig({ allowedPeers: ['10.1.0.0/16', 'fd00::/8'] }).allowedPeers, ['10.1.0.0/16', 'fd00::/8']);
  t.same(parseConfig({ allowedPeers: ['127.0.0.1/32', '::1/128', '169.254.0.0/16', 'fe80::/10', '172.16.5.0/24'] }).allowedPeers.length, 5);
});

t.test('when allowedPeers holds a public range then sigil-server start exits 2 with one error line and never listens', async (t) => {
  const dir = join(mkdtempSync(join(tmpdir(), 'sigil-config-start-')), 'data');
  t.teardown(() => rmSync(dirname(dir), { recursive: true, force: true }));
  const init = await runServer(['init', '--data', dir, '--listen', '127.0.0.1:0', '--json']);
  t.equal(init.code, 0, init.stderr);
  const configPath = join(dir, 'config.json');
  const config = JSON.parse(readFileSync(configPath, 'utf8'));
  writeFileSync(configPath, JSON.stringify({ ...config, allowedPeers: ['0.0.0.0/0', '::/0'] }, null, 2));
  // With the old schema the server listened; 20 s is ample for start to refuse.
  const r = await runServer(['start', '--data', dir], {}, 20_000);
  t.equal(r.code, 2, r.stderr);
  const lines = r.stderr.trim().split('\n');
  t.equal(lines.length, 1, 'one line on stderr');
  const line = JSON.parse(lines[0]);
  t.equal(line.level, 'error');
  t.match(line.msg, `invalid configuration in ${configPath}: allowedPeers.0: 0.0.0.0/0 is not within the LAN ranges`);
  t.match(line.msg, 'allowedPeers.1: ::/0 is not within the LAN ranges');
  t.notMatch(r.stderr, /listening/);
});
