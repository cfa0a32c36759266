/**
 * Controls `nftables.*`: the firewall lets in only the Sigil port from the LAN ranges (and SSH from
 * the administration range when one is configured) and lets nothing out but replies. Judged from
 * /etc/nftables.conf, and on a live host also from `nft list ruleset` (what the kernel enforces now).
 *
 * nftables semantics used here (nft(8)): a packet traverses every base chain of its hook; `drop` in
 * any of them is final, `accept` only ends that chain. So if every base chain of a hook has policy
 * drop and accepts only allowed traffic, nothing else gets through.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { coveredBy, parseCidr, parseRange, type AddressRange, type Cidr } from './cidr.js';
import { fail, pass, type CheckContext, type Control, type ControlResult } from './control.js';
import type { HardeningConf } from './conf.js';
import { parseNftRuleset, type NftChain, type NftRuleset, type NftTable } from './nft-ruleset.js';

const run = promisify(execFile);

/** Host path of Debian's ruleset, loaded by nftables.service. */
export const NFT_CONF_PATH = '/etc/nftables.conf';

const ND_TYPES = new Set(['nd-neighbor-solicit', 'nd-neighbor-advert', 'nd-router-solicit', 'nd-router-advert']);
const REPLY_STATES = new Set(['established', 'related']);

type Source = { label: string; ruleset: NftRuleset } | { label: string; error: string };

const cache = new WeakMap<CheckContext, Promise<Source[]>>();

async function sources(ctx: CheckContext): Promise<Source[]> {
  const out: Source[] = [];
  const text = await ctx.host.readText(NFT_CONF_PATH);
  if (text === undefined) out.push({ label: NFT_CONF_PATH, error: `${NFT_CONF_PATH} does not exist` });
  else out.push(parse(text, NFT_CONF_PATH));
  if (ctx.host.live) {
    try {
      const { stdout } = await run('nft', ['list', 'ruleset'], { timeout: 10_000 });
      out.push(parse(stdout, 'live ruleset'));
    } catch (err) {
      const e = err as NodeJS.ErrnoException & { stderr?: string };
      // No nft binary means no nftables at all on this host: the file alone is then all there is.
      if (e.code !== 'ENOENT') out.push({ label: 'live ruleset', error: `nft list ruleset failed: ${(e.stderr || e.message).trim()}` });
    }
  }
  return out;
}

function parse(text: string, label: string): Source {
  try {
    return { label, ruleset: parseNftRuleset(text, label) };
  } catch (err) {
    return { label, error: (err as Error).message };
  }
}

/** Values of `{ a, b }` or a single word. */
function values(text: string): string[] {
  return text.replace(/^\{|\}$/g, '').split(',').map((v) => v.trim()).filter(Boolean);
}

/**
 * Source addresses of a set or an inline match: CIDRs, literal addresses and `first-last` ranges.
 * A range is kept whole, so that it is judged by its span rather than by its two ends.
 *
 * @throws CidrInvalidError or RangeInvalidError (malformed, reversed) naming the element.
 */
function elementSources(elements: string[]): Array<Cidr | AddressRange> {
  return elements.map((e) => (e.includes('-') ? parseRange(e) : parseCidr(e)));
}

/** `outside` as text for a reason; says how a range is judged when one is among them. */
function outsideText(outside: Array<Cidr | AddressRange>, ranges: string): string {
  const text = outside.map((c) => c.text).join(', ');
  return outside.some((c) => 'first' in c) ? `${text}, outside ${ranges} (a range must lie wholly within one of them)` : `${text}, outside ${ranges}`;
}

/** Judges one accepting rule; returns what it admits or why it must not be there. */
function judgeAccept(
  rule: string,
  table: NftTable,
  hook: 'input' | 'output',
  conf: HardeningConf,
): { ok: true; admits: 'loopback' | 'replies' | 'nd' | 'sigil' | 'ssh' } | { ok: false; why: string } {
  if (/\b(jump|goto|vmap)\b/.test(rule)) return { ok: false, why: `cannot audit a rule that branches: "${rule}"` };
  if (rule.includes('!=')) return { ok: false, why: `a negated match accepts everything else: "${rule}"` };
  const dir = hook === 'input' ? 'iif' : 'oif';
  if (new RegExp(`^(meta )?${dir}(name)? "?lo"? accept$`).test(rule)) return { ok: true, admits: 'loopback' };
  const ct = /\bct state (\{[^}]*\}|\S+)/.exec(rule);
  if (ct) {
    const states = values(ct[1]).flatMap((s) => s.split(','));
    if (states.every((s) => REPLY_STATES.has(s))) return { ok: true, admits: 'replies' };
  }
  const icmp = /\bicmpv6 type (\{[^}]*\}|\S+)/.exec(rule);
  if (icmp && values(icmp[1]).every((t) => ND_TYPES.has(t))) return { ok: true, admits: 'nd' };
  if (hook === 'output') return { ok: false, why: `output chain accepts traffic the host starts: "${rule}"` };
  // An inline range may be written with spaces around its dash (`ip saddr 10.0.0.1 - 10.0.0.9`).
  const saddr = /\bip6? saddr (@\S+|\{[^}]*\}|\S+(?: ?- ?\S+)?)/.exec(rule);
  const dport = /\btcp dport (\{[^}]*\}|\S+)/.exec(rule);
  if (!dport) return { ok: false, why: `accepts more than one TCP port: "${rule}"` };
  if (!saddr) return { ok: false, why: `accepts from any address: "${rule}"` };
  let sources: Array<Cidr | AddressRange>;
  try {
    if (saddr[1].startsWith('@')) {
      const set = table.sets.get(saddr[1].slice(1));
      if (!set) return { ok: false, why: `refers to a set that does not exist: "${rule}"` };
      sources = elementSources(set.elements);
    } else {
      sources = elementSources(values(saddr[1]));
    }
  } catch (err) {
    return { ok: false, why: `source addresses not understood: ${(err as Error).message}: "${rule}"` };
  }
  const ports = values(dport[1]);
  if (ports.length !== 1 || !/^\d+$/.test(ports[0])) return { ok: false, why: `accepts more than one port: "${rule}"` };
  const port = Number(ports[0]);
  if (port === conf.port) {
    const outside = sources.filter((c) => !coveredBy(c, conf.lanRanges));
    return outside.length === 0
      ? { ok: true, admits: 'sigil' }
      : { ok: false, why: `admits port ${port} from ${outsideText(outside, 'SIGIL_LAN_RANGES')}: "${rule}"` };
  }
  if (port === conf.sshPort && conf.adminRanges.length > 0) {
    const outside = sources.filter((c) => !coveredBy(c, conf.adminRanges));
    return outside.length === 0
      ? { ok: true, admits: 'ssh' }
      : { ok: false, why: `admits SSH from ${outsideText(outside, 'SIGIL_ADMIN_RANGE')}: "${rule}"` };
  }
  return { ok: false, why: `accepts port ${port}, which is neither SIGIL_PORT nor SSH from SIGIL_ADMIN_RANGE: "${rule}"` };
}

/** Judges one hook over a whole ruleset. */
function judgeHook(ruleset: NftRuleset, hook: 'input' | 'output', conf: HardeningConf): ControlResult {
  const chains: Array<{ chain: NftChain; table: NftTable }> = [];
  for (const table of ruleset.tables) {
    for (const chain of table.chains) {
      if (chain.hook === hook && ['inet', 'ip', 'ip6'].includes(table.family)) chains.push({ chain, table });
    }
  }
  const v4 = chains.some(({ table }) => table.family !== 'ip6');
  const v6 = chains.some(({ table }) => table.family !== 'ip');
  if (!v4 || !v6) return fail(`no ${hook} chain filters ${!v4 ? 'IPv4' : 'IPv6'}: it all passes`);
  const admitted = new Set<string>();
  for (const { chain, table } of chains) {
    const where = `chain ${table.family} ${table.name} ${chain.name}`;
    if (chain.policy !== 'drop') return fail(`${where} has policy ${chain.policy ?? 'accept (default)'}, expected drop`);
    for (const rule of chain.rules) {
      if (!/\baccept\b/.test(rule) && !/\b(jump|goto|vmap)\b/.test(rule)) continue;
      const verdict = judgeAccept(rule, table, hook, conf);
      if (!verdict.ok) return fail(`${where}: ${verdict.why}`);
      admitted.add(verdict.admits);
    }
  }
  if (hook === 'input' && !admitted.has('sigil')) return fail(`no rule admits port ${conf.port} from SIGIL_LAN_RANGES: the appliance is unreachable`);
  const what = hook === 'input' ? `only port ${conf.port} from the LAN${admitted.has('ssh') ? ` and SSH from the admin range` : ''}` : 'only replies';
  return pass(`policy drop; accepts ${what} (${[...admitted].sort().join(', ')})`);
}

function rulesetControl(id: string, title: string, judge: (r: NftRuleset, conf: HardeningConf) => ControlResult): Control {
  return {
    id,
    title,
    async check(ctx) {
      if (!ctx.conf) return fail(`cannot judge the firewall without the configuration: ${ctx.confError}`);
      let loading = cache.get(ctx);
      if (!loading) cache.set(ctx, (loading = sources(ctx)));
      const reasons: string[] = [];
      for (const source of await loading) {
        if ('error' in source) return fail(source.error);
        const result = judge(source.ruleset, ctx.conf);
        if (!result.ok) return fail(`${source.label}: ${result.reason}`);
        reasons.push(`${source.label}: ${result.reason}`);
      }
      return pass(reasons.join('; '));
    },
  };
}

/** The `nftables.*` controls, in report order. */
export const NFT_CONTROLS: readonly Control[] = [
  rulesetControl('nftables.input', 'inbound: only the Sigil port from the LAN ranges (and SSH from the admin range)', (r, conf) => {
    if (r.unsupported.length > 0) return fail(`statements the audit cannot follow: ${r.unsupported.join(' | ')}`);
    return judgeHook(r, 'input', conf);
  }),
  rulesetControl('nftables.output', 'outbound: nothing but replies', (r, conf) => judgeHook(r, 'output', conf)),
  rulesetControl('nftables.forward', 'forwarding: policy drop', (r) => {
    const chains = r.tables.flatMap((t) => t.chains.filter((c) => c.hook === 'forward' && ['inet', 'ip', 'ip6'].includes(t.family)));
    if (!chains.some((c) => c.policy === 'drop')) return fail('no forward chain with policy drop');
    const open = chains.find((c) => c.policy !== 'drop' || c.rules.some((rule) => /\baccept\b/.test(rule)));
    return open ? fail(`forward chain ${open.name} accepts traffic`) : pass('policy drop, no accept rule');
  }),
  {
    id: 'nftables.enabled',
    title: 'nftables.service is enabled at boot',
    async check(ctx) {
      for (const target of ['sysinit.target.wants', 'multi-user.target.wants', 'basic.target.wants']) {
        const link = `/etc/systemd/system/${target}/nftables.service`;
        if ((await ctx.host.linkTarget(link)) !== undefined || (await ctx.host.stat(link)) !== undefined) return pass(`enabled (${link})`);
      }
      return fail('nftables.service is not enabled: the ruleset would be gone after a reboot');
    },
  },
];
