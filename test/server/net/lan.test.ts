import t from 'tap';
import {
  assertLanListen,
  cidrMatcher,
  classifyAddress,
  formatListen,
  parseCidr,
  parseListen,
  unmapIpv4,
} from '../../../server/net/index.js';

t.test('classifyAddress', async (t) => {
  const cases: [string, string][] = [
    ['127.0.0.1', 'loopback'],
    ['127.255.1.2', 'loopback'],
    ['::1', 'loopback'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['172.32.0.1', 'public'],
    ['172.15.255.255', 'public'],
    ['192.168.1.1', 'private'],
    ['192.169.1.1', 'public'],
    ['fc00::1', 'private'],
    ['fd12:3456::1', 'private'],
    ['fe80::1', 'link-local'],
    ['169.254.10.20', 'link-local'],
    ['8.8.8.8', 'public'],
    ['2001:db8::1', 'public'],
    ['0.0.0.0', 'unspecified'],
    ['::', 'unspecified'],
    ['::ffff:10.0.0.1', 'private'],
    ['::ffff:8.8.8.8', 'public'],
    ['not-an-ip', 'public'],
  ];
  for (const [ip, cls] of cases) t.equal(classifyAddress(ip), cls, `when ${ip} then ${cls}`);
});

t.test('when an IPv4-mapped IPv6 address is given then it is unmapped', async (t) => {
  t.equal(unmapIpv4('::ffff:192.168.0.1'), '192.168.0.1');
  t.equal(unmapIpv4('::1'), '::1');
});

t.test('parseListen', async (t) => {
  t.same(parseListen('127.0.0.1:8443'), { host: '127.0.0.1', port: 8443, family: 4 });
  t.same(parseListen('[::1]:0'), { host: '::1', port: 0, family: 6 });
  t.equal(formatListen(parseListen('[fe80::1]:443')), '[fe80::1]:443');
  for (const bad of ['localhost:8443', '127.0.0.1', '127.0.0.1:99999', '::1:8443', 'example.org:443', ':8443']) {
    t.throws(() => parseListen(bad), { code: 'LISTEN_INVALID' }, `when --listen ${bad} then LISTEN_INVALID`);
  }
});

t.test('when the listen address is public or unspecified then LISTEN_PUBLIC', async (t) => {
  t.throws(() => assertLanListen(parseListen('8.8.8.8:443')), { code: 'LISTEN_PUBLIC', message: /public address/ });
  t.throws(() => assertLanListen(parseListen('0.0.0.0:443')), { code: 'LISTEN_PUBLIC' });
  t.throws(() => assertLanListen(parseListen('[2001:db8::1]:443')), { code: 'LISTEN_PUBLIC' });
  t.doesNotThrow(() => assertLanListen(parseListen('10.0.0.5:8443')));
  t.doesNotThrow(() => assertLanListen(parseListen('[fd00::5]:8443')));
});

t.test('cidrMatcher', async (t) => {
  const m = cidrMatcher(['10.0.0.0/8', 'fc00::/7']);
  t.ok(m('10.9.9.9'));
  t.ok(m('::ffff:10.9.9.9'), 'when a dual-stack peer is IPv4-mapped then its IPv4 address decides');
  t.ok(m('fd00::1'));
  t.notOk(m('127.0.0.1'));
  t.notOk(m('garbage'));
  t.same(parseCidr('192.168.0.0/16'), { address: '192.168.0.0', prefix: 16, family: 'ipv4' });
  for (const bad of ['10.0.0.0', '10.0.0.0/33', 'fc00::/129', 'x/8', '10.0.0.0/a']) {
    t.throws(() => cidrMatcher([bad]), { code: 'CIDR_INVALID' }, `when CIDR ${bad} then CIDR_INVALID`);
  }
});
