/**
 * The LAN-only peer rule on a real TLS listener: a peer outside the allowed ranges is dropped
 * before TLS; the same listener with the default ranges accepts 127.0.0.1.
 */
import net from 'node:net';
import t from 'tap';
import { attachPeerFilter } from '../../../server/net/index.js';
import { startTestAppliance } from '../../helpers/appliance.js';

t.test('when only 10.0.0.0/8 is allowed then a 127.0.0.1 client is refused before TLS', async (t) => {
  const a = await startTestAppliance({ config: { allowedPeers: ['10.0.0.0/8'] }, skipOfficerFirstLogin: true, captureLogs: true });
  t.teardown(() => a.stop());
  await t.rejects(a.request('/v1/health'), /ECONNRESET|socket hang up|disconnected/);
  // A raw TCP client sees the connection closed without a single TLS byte.
  const got = await new Promise<{ bytes: number }>((resolve) => {
    const s = net.connect(a.port, '127.0.0.1');
    let bytes = 0;
    s.on('data', (d) => (bytes += d.length));
    s.on('close', () => resolve({ bytes }));
    s.on('error', () => undefined);
    s.write(Buffer.from('160301', 'hex'));
  });
  t.equal(got.bytes, 0);
  t.ok(a.logs.some((l) => /peer outside the allowed ranges/.test(l) && /127\.0\.0\.1/.test(l)), 'the refusal is logged');
});

t.test('when the default ranges apply then a 127.0.0.1 client is served', async (t) => {
  const a = await startTestAppliance({ skipOfficerFirstLogin: true });
  t.teardown(() => a.stop());
  const r = await a.request('/v1/health');
  t.equal(r.status, 200);
  t.equal(r.body.ok, true);
});

t.test('when the filter is detached then connections pass again', async (t) => {
  const server = net.createServer((s) => s.end('hi'));
  const detach = attachPeerFilter(server, { allowedPeers: ['10.0.0.0/8'] });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const read = () =>
    new Promise<string>((resolve) => {
      const s = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
      let text = '';
      s.setEncoding('utf8').on('data', (d: string) => (text += d));
      s.on('close', () => resolve(text));
      s.on('error', () => undefined);
    });
  t.equal(await read(), '', 'refused while attached');
  detach();
  t.equal(await read(), 'hi', 'served once detached');
  t.throws(() => attachPeerFilter(server, { allowedPeers: ['nonsense'] }), { code: 'CIDR_INVALID' });
});

t.test('when the appliance listens on [::1] then an IPv6 loopback client is served', async (t) => {
  const a = await startTestAppliance({ listen: '[::1]:0', skipOfficerFirstLogin: true });
  t.teardown(() => a.stop());
  t.match(a.url, /^https:\/\/\[::1\]:\d+$/);
  const r = await a.request('/v1/health');
  t.equal(r.status, 200);
});
