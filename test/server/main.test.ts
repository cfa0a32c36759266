/**
 * sigil-server as a real process: init (--json and summary), refusals, start, graceful stop on
 * SIGTERM with a request in flight, JSON logs without secrets, and no outbound sockets.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { exportPrivateKeyPem, openPkcs12 } from '../../pki/index.js';
import { envelopeReceiptStatement, loginStatement } from '../../server/index.js';
import { httpsRequest, signB64 } from '../helpers/appliance.js';
import { runServer, startServer } from '../helpers/server-process.js';

const tmp = mkdtempSync(join(tmpdir(), 'sigil-main-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

t.test('when --help is asked then every command documents EXAMPLES and EXIT CODES', async (t) => {
  for (const args of [['--help'], ['init', '--help'], ['start', '--help']]) {
    const r = await runServer(args);
    t.equal(r.code, 0, args.join(' '));
    t.match(r.stdout, /EXAMPLES/);
    t.match(r.stdout, /EXIT CODES/);
  }
});

t.test('when --listen is public then init refuses with exit 2 and a clear message', async (t) => {
  const r = await runServer(['init', '--data', join(tmp, 'public'), '--listen', '203.0.113.5:8443']);
  t.equal(r.code, 2);
  t.match(r.stderr, /public address/);
  t.notOk(existsSync(join(tmp, 'public', 'appliance.json')));
});

t.test('when --profile is unknown then exit 2 naming the allowed values', async (t) => {
  const r = await runServer(['init', '--data', join(tmp, 'bad'), '--profile', 'dsa']);
  t.equal(r.code, 2);
  t.match(r.stderr, /p384/);
});

t.test('when init runs without --json then it prints a summary and warns about the master key file', async (t) => {
  const r = await runServer(['init', '--data', join(tmp, 'friendly'), '--listen', '127.0.0.1:0']);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /envelope/);
  t.match(r.stdout, /officer\.p12/);
  t.match(r.stdout, /MASTER KEY FILE/);
  t.match(r.stdout, /removable media/);
});

const dataDir = join(tmp, 'data');
const init = await runServer(['init', '--data', dataDir, '--listen', '127.0.0.1:0', '--org', 'Test Ministry', '--json']);
const result = JSON.parse(init.stdout);

t.test('when init --json runs then it prints one object with the paths and secrets scripts need', async (t) => {
  t.equal(init.code, 0, init.stderr);
  t.match(result, {
    url: /^https:\/\/127\.0\.0\.1:/,
    ca: { root: String, chain: String, rootKeyFile: String, rootKeyPassphrase: String },
    officer: { login: 'officer', envelopePassword: String, p12: String, p12Password: String },
  });
  for (const p of [result.ca.root, result.ca.chain, result.officer.p12]) t.ok(existsSync(p), p);
  for (const p of [result.ca.rootKeyFile, result.officer.p12, join(dataDir, 'secrets', 'master.key')]) {
    t.equal(statSync(p).mode & 0o077, 0, `${p} is private`);
  }
  // The root key opens with the printed passphrase (and only with it).
  const out = execFileSync('openssl', ['pkey', '-in', result.ca.rootKeyFile, '-passin', `pass:${result.ca.rootKeyPassphrase}`, '-noout', '-text_pub'], { encoding: 'utf8' });
  t.match(out, /Public-Key/);
  t.throws(() => execFileSync('openssl', ['pkey', '-in', result.ca.rootKeyFile, '-passin', 'pass:wrong', '-noout'], { stdio: 'ignore' }));
  // No private key in clear anywhere in the data directory.
  const walk = (d: string): string[] => readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(d, e.name)) : [join(d, e.name)]));
  for (const f of walk(dataDir)) t.notMatch(readFileSync(f).toString('latin1'), /BEGIN (EC )?PRIVATE KEY/, `${f} holds no clear key`);
});

t.test('when init runs again on the same directory then it refuses (exit 2)', async (t) => {
  const r = await runServer(['init', '--data', dataDir, '--json']);
  t.equal(r.code, 2);
  t.match(r.stderr, /refusing to overwrite/);
});

t.test('when start runs on an empty directory then exit 2', async (t) => {
  const r = await runServer(['start', '--data', join(tmp, 'nothing')]);
  t.equal(r.code, 2);
  t.match(r.stderr, /sigil-server init/);
});

/** Socket inodes of `pid`. */
function socketInodes(pid: number): Set<string> {
  const out = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) out.add(m[1]);
    } catch {
      // fd closed between readdir and readlink
    }
  }
  return out;
}

/** inode → {proto, localPort, remote} from /proc/net. */
function netTable(): Map<string, { proto: string; localPort: number; remote: string }> {
  const map = new Map<string, { proto: string; localPort: number; remote: string }>();
  for (const proto of ['tcp', 'tcp6', 'udp', 'udp6']) {
    let text = '';
    try {
      text = readFileSync(`/proc/net/${proto}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 10) continue;
      const localPort = parseInt(cols[1].split(':')[1], 16);
      map.set(cols[9], { proto, localPort, remote: cols[2] });
    }
  }
  return map;
}

t.test('a whole login scenario against the child process', async (t) => {
  const server = await startServer(dataDir);
  const pid = server.child.pid as number;
  const caPem = readFileSync(result.ca.chain, 'utf8');
  const p12 = await openPkcs12(new Uint8Array(readFileSync(result.officer.p12)), result.officer.p12Password);
  const tls = { cert: p12.cert.pem, key: await exportPrivateKeyPem(p12.key) };
  const req = (path: string, o: Parameters<typeof httpsRequest>[3] = {}) => httpsRequest(server.url, path, caPem, { ...tls, ...o });

  const violations: string[] = [];
  let samples = 0;
  const sample = () => {
    samples++;
    const table = netTable();
    for (const inode of socketInodes(pid)) {
      const s = table.get(inode);
      if (!s) continue; // unix-domain sockets (libuv internals) are not network sockets
      if (s.proto.startsWith('udp')) violations.push(`UDP socket ${inode} local port ${s.localPort}`);
      else if (s.localPort !== server.port) violations.push(`TCP socket ${inode} local port ${s.localPort} → ${s.remote}`);
    }
  };
  const timer = setInterval(sample, 15);

  t.test('when the officer logs in, changes the password and works then the server opens no outbound socket', async (t) => {
    const ch = await req('/v1/auth/challenge', { body: { login: 'officer' } });
    const signature = await signB64(loginStatement('officer', ch.body.nonce), p12.cert, p12.key);
    const login = await req('/v1/auth/login', { body: { login: 'officer', password: result.officer.envelopePassword, nonce: ch.body.nonce, signature } });
    t.equal(login.status, 200);
    const receipt = await signB64(envelopeReceiptStatement('officer', login.body.envelopeSerial), p12.cert, p12.key);
    const first = await req('/v1/auth/first-login', { token: login.body.token, body: { newPassword: 'A-new-passphrase-for-SO', receipt } });
    t.equal(first.status, 200);
    const token = login.body.token;
    const created = await req('/v1/users', { token, body: { login: 'ivan', fullName: 'Ivan', department: 'Ops', clearance: 'secret', role: 'staff' } });
    t.equal(created.status, 201);
    const p = await req('/v1/users/ivan/certificates/p12', { token, body: {} });
    t.equal(p.status, 201);
    for (const path of ['/v1/me', '/v1/users', '/v1/crl', '/v1/ca', '/v1/health']) t.equal((await req(path, { token })).status, 200, path);
    sample();
    t.ok(samples > 5, `${samples} samples taken`);
    t.same(violations, [], 'no UDP socket and no TCP socket other than the listener and its clients');
  });

  t.test('when SIGTERM arrives during a request then that request finishes and the process exits 0', async (t) => {
    // Send headers and half a body, signal, then finish the body.
    const body = JSON.stringify({ login: 'officer' });
    const pending = new Promise<{ status: number; text: string }>((resolve, reject) => {
      const r = https.request(
        { host: '127.0.0.1', port: server.port, path: '/v1/auth/challenge', method: 'POST', ca: caPem, ...tls, agent: false, headers: { 'content-type': 'application/json', 'content-length': String(body.length) } },
        (res) => {
          let text = '';
          res.setEncoding('utf8').on('data', (d: string) => (text += d));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        },
      );
      r.on('error', reject);
      r.write(body.slice(0, 5));
      r.on('socket', (s) => s.once('secureConnect', () => setTimeout(() => {
        server.child.kill('SIGTERM');
        setTimeout(() => r.end(body.slice(5)), 300);
      }, 100)));
    });
    const res = await pending;
    t.equal(res.status, 200, res.text);
    t.match(JSON.parse(res.text), { nonce: String });
    const code = await server.exited;
    clearInterval(timer);
    t.equal(code, 0);
    const lines = server.stderr().trim().split('\n');
    // One assertion for all lines: how many lines a run logs varies, the count of assertions should not.
    const notJson = lines.filter((l) => {
      try {
        JSON.parse(l);
        return false;
      } catch {
        return true;
      }
    });
    t.same(notJson, [], `every one of ${lines.length} log lines is JSON`);
    t.ok(lines.some((l) => JSON.parse(l).msg === 'sigil-server stopped'));
    const all = server.stderr();
    for (const secret of [result.officer.envelopePassword, 'A-new-passphrase-for-SO', result.officer.p12Password]) t.notOk(all.includes(secret));
    t.notMatch(all, /PRIVATE KEY|Bearer/);
    t.notOk(existsSync(join(dataDir, 'vault', 'vault.db-wal')) && statSync(join(dataDir, 'vault', 'vault.db-wal')).size > 0, 'the database closed cleanly (WAL checkpointed)');
  });
});

t.test('when SIGTERM arrives with a live event stream open then the stream ends and the process exits well within the grace period', async (t) => {
  // The scenario above changed the officer's password; log in with the new one.
  const server = await startServer(dataDir);
  const caPem = readFileSync(result.ca.chain, 'utf8');
  const p12 = await openPkcs12(new Uint8Array(readFileSync(result.officer.p12)), result.officer.p12Password);
  const tls = { cert: p12.cert.pem, key: await exportPrivateKeyPem(p12.key) };
  const req = (path: string, o: Parameters<typeof httpsRequest>[3] = {}) => httpsRequest(server.url, path, caPem, { ...tls, ...o });
  const ch = await req('/v1/auth/challenge', { body: { login: 'officer' } });
  const signature = await signB64(loginStatement('officer', ch.body.nonce), p12.cert, p12.key);
  const login = await req('/v1/auth/login', { body: { login: 'officer', password: 'A-new-passphrase-for-SO', nonce: ch.body.nonce, signature } });
  t.equal(login.status, 200, JSON.stringify(login.body));
  let text = '';
  const ended = new Promise<void>((resolve, reject) => {
    const r = https.request(
      { host: '127.0.0.1', port: server.port, path: '/v1/events', method: 'GET', ca: caPem, ...tls, agent: false, headers: { authorization: `Bearer ${login.body.token}` } },
      (res) => {
        res.setEncoding('utf8').on('data', (d: string) => (text += d));
        res.on('end', () => resolve());
        res.on('error', reject);
      },
    );
    r.on('error', reject);
    r.end();
  });
  while (!text.includes('event: ready')) await new Promise((r) => setTimeout(r, 20));
  const signalled = Date.now();
  server.child.kill('SIGTERM');
  await ended;
  const code = await server.exited;
  const took = Date.now() - signalled;
  t.equal(code, 0);
  t.ok(took < 5000, `stopped in ${took} ms (the listener's grace period is 10 s)`);
});

t.test('when SIGIL_MASTER_PASSPHRASE is set then init and start use it, and a wrong one refuses to start', async (t) => {
  const dir = join(tmp, 'passphrase');
  const pass = 'a long operator passphrase';
  const r = await runServer(['init', '--data', dir, '--listen', '127.0.0.1:0', '--json'], { SIGIL_MASTER_PASSPHRASE: pass });
  t.equal(r.code, 0, r.stderr);
  t.same(JSON.parse(r.stdout).masterKey, { kind: 'passphrase' });
  t.notOk(existsSync(join(dir, 'secrets', 'master.key')), 'no key file is written');
  const wrong = await runServer(['start', '--data', dir], { SIGIL_MASTER_PASSPHRASE: 'not the passphrase at all' });
  t.equal(wrong.code, 1);
  t.match(wrong.stderr, /MASTER_KEY_WRONG/);
  t.notMatch(wrong.stderr, /sigil-server failed/, 'the line says what is wrong with the key, not only that start failed');
  const none = await runServer(['start', '--data', dir]);
  t.equal(none.code, 2, 'without the passphrase: a usage error naming the passphrase');
  t.match(none.stderr, /passphrase/);
  const s = await startServer(dir, { SIGIL_MASTER_PASSPHRASE: pass });
  s.child.kill('SIGINT');
  t.equal(await s.exited, 0);
});
