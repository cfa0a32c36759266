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
import { posix } from 'node:path';
import { promisify } from 'node:util';
import { coveredBy, parseCidr, parseRange, type AddressRange, type Cidr } from './cidr.js';
import { fail, pass, type CheckContext, type Control, type ControlResult } from './control.js';
import type { HardeningConf } from './conf.js';
import type { Host } from './host.js';
import { parseNftRule, parseNftRuleset, type NftChain, type NftRule, type NftRuleset, type NftTable } from './nft-ruleset.js';

const run = promisify(execFile);

/** Host path of Debian's ruleset, loaded by nftables.service. */
export const NFT_CONF_PATH = '/etc/nftables.conf';

const ND_TYPES = new Set(['nd-neighbor-solicit', 'nd-neighbor-advert', 'nd-router-solicit', 'nd-router-advert']);
const REPLY_STATES = new Set(['established', 'related']);

/** Why a live host without the nft binary fails every ruleset control. */
const NFT_MISSING = 'nft is not installed: nothing loads the ruleset at boot, and the live ruleset cannot be read';

/**
 * Statements a judged chain must not hold, and why: each lets a packet by, or out, other than by
 * the accept rules this audit judges.
 */
const UNSAFE_STATEMENTS = new Map([
  ['queue', 'hands packets to a userspace program, which decides their fate (and with "bypass" they are accepted when none listens)'],
  ['dup', 'sends a copy of packets to another address or interface'],
  ['fwd', 'forwards packets out of another interface'],
  ['notrack', 'exempts packets from connection tracking, so "ct state" rules no longer describe them'],
]);
/** Statements that neither accept, change nor send packets. */
const SAFE_STATEMENTS = new Set(['counter', 'log', 'limit']);

type Source = { label: string; ruleset: NftRuleset } | { label: string; error: string };

const cache = new WeakMap<CheckContext, Promise<Source[]>>();

async function sources(ctx: CheckContext): Promise<Source[]> {
  const out = [await fileSource(ctx)];
  if (ctx.host.live) out.push(await liveSource(ctx.host));
  return out;
}

/** /etc/nftables.conf, which nftables.service loads at boot. */
async function fileSource(ctx: CheckContext): Promise<Source> {
  let text: string | undefined;
  try {
    text = await ctx.host.readText(NFT_CONF_PATH);
  } catch (err) {
    return { label: NFT_CONF_PATH, error: `cannot read ${NFT_CONF_PATH}: ${(err as Error).message}` };
  }
  return text === undefined ? { label: NFT_CONF_PATH, error: `${NFT_CONF_PATH} does not exist` } : parse(text, NFT_CONF_PATH);
}

/**
 * What the kernel enforces now, from `nft list ruleset`. nft is looked for on PATH and then in the
 * fixed system directories (Host.findProgram): cron and some service managers run without
 * /usr/sbin on PATH, and an installed nft must not read as a missing one.
 */
async function liveSource(host: Host): Promise<Source> {
  const label = 'live ruleset';
  const nft = await host.findProgram('nft');
  // Without nft, nftables.service has nothing to load the file with: the file alone proves nothing.
  if (!nft.found) return { label, error: `${NFT_MISSING} (no executable nft in ${nft.searched.join(', ') || 'no directory'})` };
  try {
    const { stdout } = await run(nft.path, ['list', 'ruleset'], { timeout: 10_000 });
    return parse(stdout, label);
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    return { label, error: `${nft.path} list ruleset failed: ${(e.stderr || e.message).trim()}` };
  }
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

/**
 * Why a rule of a judged chain cannot be vouched for, or undefined: it branches, or it holds a
 * statement that is not known to be safe (anything this audit does not understand counts as unsafe).
 */
function ruleProblem(rule: NftRule): string | undefined {
  if (rule.verdict !== undefined && /^(jump|goto|vmap)\b/.test(rule.verdict)) return `cannot audit a rule that branches: "${rule.text}"`;
  for (const statement of rule.statements) {
    const word = statement.split(' ')[0];
    if (SAFE_STATEMENTS.has(word)) continue;
    const why = UNSAFE_STATEMENTS.get(word);
    return why ? `${why} (${word}): "${rule.text}"` : `cannot audit "${statement}", a statement it does not understand: "${rule.text}"`;
  }
  return undefined;
}

/**
 * Judges one accepting rule; returns what it admits or why it must not be there. Only its matches
 * are read, so that text in a comment or a log prefix is not taken for one.
 */
function judgeAccept(
  parsed: NftRule,
  table: NftTable,
  hook: 'input' | 'output',
  conf: HardeningConf,
): { ok: true; admits: 'loopback' | 'replies' | 'nd' | 'sigil' | 'ssh' } | { ok: false; why: string } {
  const rule = parsed.text;
  const matches = parsed.matches.join(' ');
  if (matches.includes('!=')) return { ok: false, why: `a negated match accepts everything else: "${rule}"` };
  const dir = hook === 'input' ? 'iif' : 'oif';
  if (new RegExp(`^(meta )?${dir}(name)? "?lo"?$`).test(matches)) return { ok: true, admits: 'loopback' };
  const ct = /\bct state (\{[^}]*\}|\S+)/.exec(matches);
  if (ct) {
    const states = values(ct[1]).flatMap((s) => s.split(','));
    if (states.every((s) => REPLY_STATES.has(s))) return { ok: true, admits: 'replies' };
  }
  const icmp = /\bicmpv6 type (\{[^}]*\}|\S+)/.exec(matches);
  if (icmp && values(icmp[1]).every((t) => ND_TYPES.has(t))) return { ok: true, admits: 'nd' };
  if (hook === 'output') return { ok: false, why: `output chain accepts traffic the host starts: "${rule}"` };
  // An inline range may be written with spaces around its dash (`ip saddr 10.0.0.1 - 10.0.0.9`).
  const saddr = /\bip6? saddr (@\S+|\{[^}]*\}|\S+(?: ?- ?\S+)?)/.exec(matches);
  const dport = /\btcp dport (\{[^}]*\}|\S+)/.exec(matches);
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
    for (const text of chain.rules) {
      const rule = parseNftRule(text);
      const problem = ruleProblem(rule);
      if (problem) return fail(`${where}: ${problem}`);
      if (rule.verdict !== 'accept') continue;
      const verdict = judgeAccept(rule, table, hook, conf);
      if (!verdict.ok) return fail(`${where}: ${verdict.why}`);
      admitted.add(verdict.admits);
    }
  }
  if (hook === 'input' && !admitted.has('sigil')) return fail(`no rule admits port ${conf.port} from SIGIL_LAN_RANGES: the appliance is unreachable`);
  const what = hook === 'input' ? `only port ${conf.port} from the LAN${admitted.has('ssh') ? ` and SSH from the admin range` : ''}` : 'only replies';
  return pass(`policy drop; accepts ${what} (${[...admitted].sort().join(', ')})`);
}

function labelled(label: string, result: ControlResult): ControlResult {
  return { ok: result.ok, reason: `${label}: ${result.reason}` };
}

function rulesetControl(id: string, title: string, judge: (r: NftRuleset, conf: HardeningConf) => ControlResult): Control {
  return {
    id,
    title,
    async check(ctx) {
      const conf = ctx.conf;
      if (!conf) return fail(`cannot judge the firewall without the configuration: ${ctx.confError}`);
      let loading = cache.get(ctx);
      if (!loading) cache.set(ctx, (loading = sources(ctx)));
      // Every source is judged, so that a live host whose file is also wrong says both.
      const results = (await loading).map((source) => ('error' in source ? fail(source.error) : labelled(source.label, judge(source.ruleset, conf))));
      const failed = results.filter((r) => !r.ok);
      return failed.length > 0 ? fail(failed.map((r) => r.reason).join('; ')) : pass(results.map((r) => r.reason).join('; '));
    },
  };
}

/** Forwarding: every forward base chain has policy drop, accepts nothing and holds nothing unsafe. */
function judgeForward(r: NftRuleset): ControlResult {
  const chains = r.tables.flatMap((t) => t.chains.filter((c) => c.hook === 'forward' && ['inet', 'ip', 'ip6'].includes(t.family)));
  if (!chains.some((c) => c.policy === 'drop')) return fail('no forward chain with policy drop');
  for (const chain of chains) {
    if (chain.policy !== 'drop') return fail(`forward chain ${chain.name} accepts traffic`);
    for (const text of chain.rules) {
      const rule = parseNftRule(text);
      const problem = ruleProblem(rule);
      if (problem) return fail(`chain ${chain.family} ${chain.table} ${chain.name}: ${problem}`);
      if (rule.verdict === 'accept') return fail(`forward chain ${chain.name} accepts traffic`);
    }
  }
  return pass('policy drop, no accept rule');
}

/** Where a symbolic link points, as a host path (a relative target counts from the link's directory). */
async function linkDestination(host: Host, link: string): Promise<string | undefined> {
  const target = await host.linkTarget(link);
  return target === undefined ? undefined : posix.resolve(posix.dirname(link), target);
}

/**
 * How nftables.service is masked, or undefined. systemd reads a unit file that is /dev/null (what
 * `systemctl mask` links it to) or empty as masked, and then never starts it, enabled or not.
 */
async function maskedBy(host: Host): Promise<string | undefined> {
  for (const dir of ['/etc/systemd/system', '/run/systemd/system']) {
    const path = `${dir}/nftables.service`;
    const dest = await linkDestination(host, path);
    if (dest === '/dev/null') return `${path} → /dev/null`;
    // systemd stats the unit through its links (null_or_empty_path()); Host.stat follows them inside
    // a tree too, so a link to an empty file masks as the empty file does.
    const st = await host.stat(path);
    const shown = dest === undefined ? path : `${path} → ${dest}`;
    if (st?.isCharacterDevice()) return `${shown} is a device`;
    if (st?.isFile() && st.size === 0) return `${shown} is empty`;
  }
  return undefined;
}

/**
 * Whether a `*.target.wants` link enables nftables.service. On a live host the unit file the link
 * names must also exist: a link left dangling after nftables was removed enables nothing. In a tree
 * the target is the host's file, which the tree need not hold.
 */
async function enablement(host: Host): Promise<ControlResult> {
  let dangling: string | undefined;
  for (const target of ['sysinit.target.wants', 'multi-user.target.wants', 'basic.target.wants']) {
    const link = `/etc/systemd/system/${target}/nftables.service`;
    const dest = await linkDestination(host, link);
    if (dest === undefined && (await host.stat(link)) === undefined) continue;
    if (host.live && dest !== undefined && (await host.stat(dest)) === undefined) {
      dangling ??= `${link} points to ${dest}, which does not exist: nftables.service is not installed`;
      continue;
    }
    return pass(`enabled (${link})`);
  }
  return fail(dangling ?? 'nftables.service is not enabled: the ruleset would be gone after a reboot');
}

/** The `nftables.*` controls, in report order. */
export const NFT_CONTROLS: readonly Control[] = [
  rulesetControl('nftables.input', 'inbound: only the Sigil port from the LAN ranges (and SSH from the admin range)', (r, conf) => {
    if (r.unsupported.length > 0) return fail(`statements the audit cannot follow: ${r.unsupported.join(' | ')}`);
    return judgeHook(r, 'input', conf);
  }),
  rulesetControl('nftables.output', 'outbound: nothing but replies', (r, conf) => judgeHook(r, 'output', conf)),
  rulesetControl('nftables.forward', 'forwarding: policy drop', judgeForward),
  {
    id: 'nftables.enabled',
    title: 'nftables.service is enabled at boot',
    async check(ctx) {
      const masked = await maskedBy(ctx.host);
      if (masked) return fail(`nftables.service is masked (${masked}): systemd will not start it, so nothing loads the ruleset at boot`);
      return enablement(ctx.host);
    },
  },
];
