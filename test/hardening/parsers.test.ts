/**
 * The readers check relies on: hardening.conf, CIDRs, nftables rulesets, and the errors each raises.
 */
import t from 'tap';
import {
  CidrInvalidError,
  cidrWithin,
  coveredBy,
  HardeningConfInvalidError,
  HardeningConfMissingError,
  loadHardeningConf,
  NftSyntaxError,
  parseCidr,
  parseHardeningConf,
  parseNftRuleset,
  parseRange,
  RangeInvalidError,
} from '../../hardening/index.js';
import { tmpDir } from '../helpers/tmp.js';
import { join } from 'node:path';

/** The error `fn` throws, or undefined. */
function caught(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

t.test('when hardening.conf has only the LAN ranges then every other key takes its default', async (t) => {
  const conf = parseHardeningConf('# comment\n\nSIGIL_LAN_RANGES="10.0.0.0/8  fd00::/8"\n');
  t.equal(conf.port, 8443);
  t.same(conf.lanRanges.map((c) => c.text), ['10.0.0.0/8', 'fd00::/8']);
  t.same(conf.adminRanges, []);
  t.equal(conf.sshPort, 22);
  t.equal(conf.masterKeyFile, undefined);
  t.equal(conf.node, '/usr/bin/node');
});

t.test('when values are quoted or not then both parse the same', async (t) => {
  const conf = parseHardeningConf("SIGIL_PORT='9443'\r\nSIGIL_LAN_RANGES=192.168.1.0/24\nSIGIL_JITLESS=\"no\"\nSIGIL_MASTER_KEY_FILE=/media/k/m.key\n");
  t.equal(conf.port, 9443);
  t.equal(conf.masterKeyFile, '/media/k/m.key');
  t.equal(conf.allocator, 'auto', 'SIGIL_ALLOCATOR defaults to auto');
  t.equal(parseHardeningConf('SIGIL_LAN_RANGES=10.0.0.0/8\nSIGIL_ALLOCATOR=jemalloc\n').allocator, 'jemalloc');
});

for (const [name, text, detail] of [
  ['a line that is not KEY=VALUE', 'SIGIL_LAN_RANGES=10.0.0.0/8\nrm -rf /\n', /line 2: expected KEY=VALUE/],
  ['an unknown key', 'SIGIL_LAN_RANGES=10.0.0.0/8\nSIGIL_COLOUR=blue\n', /SIGIL_COLOUR/],
  ['a privileged port', 'SIGIL_LAN_RANGES=10.0.0.0/8\nSIGIL_PORT=443\n', /SIGIL_PORT/],
  ['no LAN range', 'SIGIL_LAN_RANGES=""\n', /SIGIL_LAN_RANGES: needs at least 1 range/],
  ['a bad CIDR', 'SIGIL_LAN_RANGES="10.0.0.0/8 10.0.0.0/40"\n', /SIGIL_LAN_RANGES: expected a CIDR .*10\.0\.0\.0\/40/],
  ['SIGIL_JITLESS=yes', 'SIGIL_LAN_RANGES=10.0.0.0/8\nSIGIL_JITLESS=yes\n', /SIGIL_JITLESS: must be "no": node 20 --jitless cannot run the server/],
  ['a relative node path', 'SIGIL_LAN_RANGES=10.0.0.0/8\nSIGIL_NODE=node\n', /SIGIL_NODE/],
  ['an unknown allocator', 'SIGIL_LAN_RANGES=10.0.0.0/8\nSIGIL_ALLOCATOR=tcmalloc\n', /SIGIL_ALLOCATOR/],
] as const) {
  t.test(`when hardening.conf has ${name} then HARDENING_CONF_INVALID names it`, async (t) => {
    const err = caught(() => parseHardeningConf(text, 'x.conf'));
    t.ok(err instanceof HardeningConfInvalidError);
    t.equal((err as HardeningConfInvalidError).code, 'HARDENING_CONF_INVALID');
    t.match((err as Error).message, /^invalid hardening configuration x\.conf: /);
    t.match((err as Error).message, detail);
  });
}

t.test('when the conf file does not exist then HARDENING_CONF_MISSING keeps the cause', async (t) => {
  const path = join(tmpDir(t), 'hardening.conf');
  const err = await loadHardeningConf(path).then(() => undefined, (e: unknown) => e);
  t.ok(err instanceof HardeningConfMissingError);
  t.equal((err as HardeningConfMissingError).code, 'HARDENING_CONF_MISSING');
  t.equal(((err as Error).cause as NodeJS.ErrnoException).code, 'ENOENT');
});

t.test('when a CIDR is malformed then CIDR_INVALID', async (t) => {
  for (const bad of ['10.0.0.0/33', '10.0.0/8', 'fd00::/129', 'example.org/8', '10.0.0.0/x', '']) {
    const err = caught(() => parseCidr(bad));
    t.ok(err instanceof CidrInvalidError, bad);
    t.equal((err as CidrInvalidError).code, 'CIDR_INVALID');
  }
  t.same(parseCidr('10.1.2.3'), { text: '10.1.2.3', address: '10.1.2.3', prefix: 32, family: 'ipv4' });
  t.equal(parseCidr('::1').prefix, 128);
});

t.test('when ranges nest or not then cidrWithin says so', async (t) => {
  t.ok(cidrWithin(parseCidr('10.1.0.0/16'), parseCidr('10.0.0.0/8')));
  t.ok(cidrWithin(parseCidr('10.0.0.0/8'), parseCidr('10.0.0.0/8')));
  t.notOk(cidrWithin(parseCidr('10.0.0.0/7'), parseCidr('10.0.0.0/8')), 'wider is not within');
  t.notOk(cidrWithin(parseCidr('11.0.0.0/16'), parseCidr('10.0.0.0/8')));
  t.notOk(cidrWithin(parseCidr('fd00::/16'), parseCidr('10.0.0.0/8')), 'families differ');
  t.ok(cidrWithin(parseCidr('fd12:3456::/32'), parseCidr('fc00::/7')));
});

t.test('when an address range is malformed or reversed then RANGE_INVALID says which and why', async (t) => {
  const cases: Array<[string, RegExp]> = [
    ['10.0.0.9-10.0.0.1', /"10\.0\.0\.9-10\.0\.0\.1" is not valid: its start comes after its end/],
    ['fd00::9-fd00::1', /start comes after its end/],
    ['10.0.0.1-10.0.0.2-10.0.0.3', /expected two addresses joined by one "-"/],
    ['10.0.0.1-', /each end must be a literal/],
    ['10.0.0.0/8-10.1.0.0', /each end must be a literal/],
    ['10.0.0.1-fd00::1', /different address families/],
  ];
  for (const [bad, why] of cases) {
    const err = caught(() => parseRange(bad));
    t.ok(err instanceof RangeInvalidError, bad);
    t.equal((err as RangeInvalidError).code, 'RANGE_INVALID');
    t.match((err as Error).message, why, bad);
  }
  t.same(parseRange('10.0.0.1 - 10.0.0.9'), { text: '10.0.0.1 - 10.0.0.9', first: '10.0.0.1', last: '10.0.0.9', family: 'ipv4' });
  t.equal(parseRange('10.0.0.1-10.0.0.1').last, '10.0.0.1', 'a range of one address');
});

t.test('when a range is judged then its whole span must lie within one CIDR', async (t) => {
  const lan = ['10.0.0.0/8', '192.168.0.0/16', 'fd00::/8', 'fe80::/10'].map(parseCidr);
  t.ok(coveredBy(parseRange('10.1.0.0-10.1.255.255'), lan));
  t.ok(coveredBy(parseRange('fd00::1-fd00::ffff'), lan));
  t.notOk(coveredBy(parseRange('10.0.0.0-192.168.255.255'), lan), 'both ends allowed, the span between is not');
  t.notOk(coveredBy(parseRange('fd00::-febf::'), lan), 'IPv6: both ends allowed, the span between is not');
  t.notOk(coveredBy(parseRange('10.255.255.0-11.0.0.255'), ['10.0.0.0/8', '11.0.0.0/8'].map(parseCidr)), 'a union of two CIDRs does not count');
  t.notOk(coveredBy(parseRange('::ffff:10.0.0.1-::ffff:10.0.0.9'), lan), 'IPv4-mapped IPv6 is not IPv4');
  t.ok(coveredBy(parseCidr('10.1.0.0/16'), lan), 'CIDRs are judged as before');
});

t.test('when nft list ruleset output is parsed then chains, hooks, policies and set elements come out', async (t) => {
  const text = `table inet filter {
	set lan4 {
		type ipv4_addr
		flags interval
		elements = { 10.0.0.0/8,
			     192.168.0.0/16 }
	}

	chain input {
		type filter hook input priority filter; policy drop;
		iif "lo" accept # loopback
		ip saddr @lan4 tcp dport 8443 accept
	}
}
table ip nat {
	chain post { type nat hook postrouting priority srcnat; policy accept; }
}
`;
  const r = parseNftRuleset(text, 'live');
  t.same(r.unsupported, []);
  t.equal(r.tables.length, 2);
  const filter = r.tables[0];
  t.same(filter.sets.get('lan4')?.elements, ['10.0.0.0/8', '192.168.0.0/16']);
  t.same(filter.chains[0], { table: 'filter', family: 'inet', name: 'input', hook: 'input', policy: 'drop', rules: ['iif "lo" accept', 'ip saddr @lan4 tcp dport 8443 accept'] });
  t.same(r.tables[1].chains[0].hook, 'postrouting');
});

t.test('when a ruleset uses include or define then they are listed as unsupported', async (t) => {
  const r = parseNftRuleset('include "/etc/nft.d/*.nft"\ndefine LAN = 10.0.0.0/8\nflush ruleset\n', 'f');
  t.same(r.unsupported, ['include "/etc/nft.d/*.nft"', 'define LAN = 10.0.0.0/8']);
});

t.test('when braces do not balance then NFT_SYNTAX', async (t) => {
  for (const text of ['table inet x {\n chain input {\n', 'table inet x { }\n}\n', 'table inet x { comment "open }']) {
    const err = caught(() => parseNftRuleset(text, 'bad.nft'));
    t.ok(err instanceof NftSyntaxError, text);
    t.equal((err as NftSyntaxError).code, 'NFT_SYNTAX');
    t.match((err as Error).message, /^cannot read nftables ruleset bad\.nft: /);
  }
});
