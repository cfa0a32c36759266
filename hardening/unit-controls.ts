/**
 * Controls `unit.*`: the sigil-server systemd unit exists and carries the sandbox issue 7 asks for.
 * The unit is read with every drop-in systemd applies to it (see unit-files.ts), because a
 * drop-in can undo any directive of the main file. This module holds the list, the service user and
 * the judgements of single directives; the larger judgements live apart, one concept each: the
 * Exec*= commands (unit-exec.ts), the service's environment (unit-environment.ts), and who besides
 * root could change what the server runs (unit-ownership.ts).
 */
import { coveredBy, LOOPBACK, parseCidr, type Cidr } from './cidr.js';
import { fail, pass, type CheckContext, type Control, type ControlResult } from './control.js';
import { iniBoolean, type IniAssignment, type IniSettings } from './ini-file.js';
import { judgeEnvironment } from './unit-environment.js';
import { execCommands, execPrefixes, judgeExec } from './unit-exec.js';
import { loadSlices, unitOf } from './unit-files.js';
import { judgeFiles, judgePreload } from './unit-ownership.js';

// Defined where the unit is looked up, which needs it; exported here as before.
export { UNIT_NAME } from './unit-files.js';

/** The service user that owns /var/lib/sigil. */
export const SERVICE_USER = 'sigil';

/** Address families the server needs: TCP/IP and local sockets. */
const ALLOWED_FAMILIES = new Set(['AF_INET', 'AF_INET6', 'AF_UNIX']);

/** Settings naming users or groups: systemd rejects a bad name as fatal, and stops reading the file. */
const CREDENTIAL_KEYS = ['User', 'Group', 'SupplementaryGroups'];

/**
 * A name systemd rejects (valid_user_group_name() in its relaxed mode: padded, control characters,
 * `:` or `/`, `.`/`..`, a number that is no UID), or one with a `%` specifier, which check does not
 * expand (`%u` is root).
 */
function isBadName(name: string): boolean {
  if (/^[0-9]+$/.test(name)) return Number(name) > 4294967294 || Number(name) === 65535;
  return /%|^ | $|[\x00-\x1f\x7f:/]|^-[0-9]+$|^\.\.?$/.test(name);
}

/** The first user or group assignment systemd would reject, anywhere in the unit and its drop-ins. */
function badCredential(s: IniSettings): IniAssignment | undefined {
  return CREDENTIAL_KEYS.flatMap((key) => s.all('Service', key)).find((a) => {
    if (a.key !== 'SupplementaryGroups') return a.value !== '' && isBadName(a.value);
    // A list: check does not unquote it, so quotes and backslashes count as bad too.
    return a.value.split(/[ \t]+/).some((name) => name !== '' && (isBadName(name) || /["'\\]/.test(name)));
  });
}

/** unit.user: `+` or a single `!` on ExecStart= runs the server as root whatever User= says. */
function judgeUser(s: IniSettings): ControlResult {
  for (const c of execCommands(s, 'ExecStart')) {
    const prefixes = execPrefixes(c.command);
    if (prefixes.includes('+') || (prefixes.includes('!') && !prefixes.includes('!!'))) {
      return fail(`ExecStart=${c.command} at ${c.at} runs the server as root: its "${prefixes}" prefix overrides User=`);
    }
  }
  const bad = badCredential(s);
  if (bad) {
    return fail(`${bad.key}=${bad.value} at ${bad.file}:${bad.line} is not a name systemd accepts (or has a % specifier): systemd stops reading the file there`);
  }
  const user = s.last('Service', 'User');
  if (!user) return fail('User= is not set: the service would run as root');
  return user.value === SERVICE_USER
    ? pass(`User=${user.value}`)
    : fail(`User=${user.value} at ${user.file}:${user.line}, expected ${SERVICE_USER}`);
}

function unitControl(
  id: string,
  title: string,
  judge: (s: IniSettings, ctx: CheckContext, files: string[]) => ControlResult | Promise<ControlResult>,
): Control {
  return {
    id,
    title,
    async check(ctx) {
      const unit = await unitOf(ctx);
      return unit.ok ? await judge(unit.s, ctx, unit.files) : fail(unit.reason);
    },
  };
}

/** A boolean `[Service]` directive that must be true. */
function mustBeTrue(id: string, key: string, title: string): Control {
  return unitControl(id, title, (s) => {
    const a = s.last('Service', key);
    if (!a) return fail(`${key}= is not set (systemd's default is off)`);
    return iniBoolean(a.value) === true
      ? pass(`${key}=${a.value} (${a.file}:${a.line})`)
      : fail(`${key}=${a.value} at ${a.file}:${a.line}, expected yes`);
  });
}

/** systemd's address keywords in IPAddressAllow=/IPAddressDeny= (systemd.resource-control(5)). */
const IP_KEYWORDS: Record<string, string[]> = {
  any: ['0.0.0.0/0', '::/0'],
  localhost: ['127.0.0.0/8', '::1/128'],
  'link-local': ['169.254.0.0/16', 'fe80::/64'],
  multicast: ['224.0.0.0/4', 'ff00::/8'],
};

function ipItems(items: string[]): { cidrs: Cidr[]; bad: string[] } {
  const cidrs: Cidr[] = [];
  const bad: string[] = [];
  for (const item of items) {
    for (const text of IP_KEYWORDS[item] ?? [item]) {
      try {
        cidrs.push(parseCidr(text));
      } catch {
        bad.push(item);
      }
    }
  }
  return { cidrs, bad };
}

/** The `unit.*` controls, in report order. */
export const UNIT_CONTROLS: readonly Control[] = [
  unitControl('unit.present', 'sigil-server.service is installed', (s, _ctx, files) => judgeExec(s, files)),
  unitControl('unit.files', 'only root can change the unit, its environment files and the program it runs', async (s, ctx, files) =>
    // The slices' files too: their IPAddressAllow= reaches the service (unit.ip-address-policy).
    judgeFiles(s, ctx, [...files, ...(await loadSlices(ctx.host, s)).flatMap((x) => x.files)]),
  ),
  unitControl('unit.user', 'runs as the dedicated user sigil', (s) => judgeUser(s)),
  unitControl('unit.protect-system', 'ProtectSystem=strict', (s) => {
    const a = s.last('Service', 'ProtectSystem');
    if (!a) return fail('ProtectSystem= is not set: the whole file system is writable');
    return a.value === 'strict' ? pass('ProtectSystem=strict') : fail(`ProtectSystem=${a.value} at ${a.file}:${a.line}, expected strict`);
  }),
  unitControl('unit.protect-home', 'ProtectHome=yes', (s) => {
    const a = s.last('Service', 'ProtectHome');
    if (!a) return fail('ProtectHome= is not set: /home, /root and /run/user are visible');
    return iniBoolean(a.value) === true || a.value === 'tmpfs'
      ? pass(`ProtectHome=${a.value}`)
      : fail(`ProtectHome=${a.value} at ${a.file}:${a.line}, expected yes`);
  }),
  mustBeTrue('unit.private-tmp', 'PrivateTmp', 'PrivateTmp=yes'),
  mustBeTrue('unit.private-devices', 'PrivateDevices', 'PrivateDevices=yes'),
  mustBeTrue('unit.no-new-privileges', 'NoNewPrivileges', 'NoNewPrivileges=yes'),
  unitControl('unit.capabilities', 'empty capability bounding and ambient sets', (s) => {
    const bounding = s.list('Service', 'CapabilityBoundingSet');
    if (bounding === undefined) return fail('CapabilityBoundingSet= is not set: the bounding set is every capability');
    if (bounding.length > 0) return fail(`CapabilityBoundingSet keeps ${bounding.join(' ')} (${s.where('Service', 'CapabilityBoundingSet')})`);
    const ambient = s.list('Service', 'AmbientCapabilities') ?? [];
    if (ambient.length > 0) return fail(`AmbientCapabilities grants ${ambient.join(' ')} (${s.where('Service', 'AmbientCapabilities')})`);
    return pass('CapabilityBoundingSet= (empty), no ambient capabilities');
  }),
  unitControl('unit.restrict-address-families', 'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX', (s) => {
    const all = s.all('Service', 'RestrictAddressFamilies');
    if (all.length === 0) return fail('RestrictAddressFamilies= is not set: every socket family is allowed');
    // systemd: an empty assignment resets; the first assignment after it decides allow- or deny-list;
    // later `~` assignments remove from an allow-list.
    let allowed: Set<string> | undefined;
    let denyList = false;
    for (const a of all) {
      if (a.value === '') {
        allowed = undefined;
        denyList = false;
        continue;
      }
      const invert = a.value.startsWith('~');
      const families = a.value.replace(/^~/, '').split(/\s+/).filter(Boolean);
      if (allowed === undefined && !denyList) {
        if (invert) denyList = true;
        else allowed = new Set(families);
      } else if (allowed) {
        for (const f of families) invert ? allowed.delete(f) : allowed.add(f);
      }
    }
    if (denyList || allowed === undefined) return fail(`RestrictAddressFamilies is a deny-list or reset (${s.where('Service', 'RestrictAddressFamilies')}); expected an allow-list`);
    const extra = [...allowed].filter((f) => !ALLOWED_FAMILIES.has(f));
    if (extra.length > 0) return fail(`RestrictAddressFamilies also allows ${extra.join(' ')}; expected only ${[...ALLOWED_FAMILIES].join(' ')}`);
    if (allowed.size === 0) return fail('RestrictAddressFamilies allows nothing: the server cannot listen');
    return pass(`RestrictAddressFamilies=${[...allowed].join(' ')}`);
  }),
  unitControl('unit.ip-address-policy', 'IPAddressDeny=any, IPAddressAllow= loopback and the LAN ranges only', async (s, ctx) => {
    if (!ctx.conf) return fail(`cannot judge IPAddressAllow without the configuration: ${ctx.confError}`);
    const deny = s.list('Service', 'IPAddressDeny') ?? [];
    const denied = ipItems(deny).cidrs;
    const any = ipItems(['any']).cidrs;
    if (!any.every((a) => denied.some((d) => d.prefix === 0 && d.family === a.family))) {
      return fail(`IPAddressDeny is "${deny.join(' ')}", expected any`);
    }
    const allowItems = s.list('Service', 'IPAddressAllow') ?? [];
    const { cidrs: allow, bad } = ipItems(allowItems);
    if (bad.length > 0) return fail(`IPAddressAllow has entries that are not addresses: ${bad.join(' ')}`);
    const permitted = [...LOOPBACK, ...ctx.conf.lanRanges];
    const outside = allow.filter((c) => !coveredBy(c, permitted));
    if (outside.length > 0) return fail(`IPAddressAllow lets in ${outside.map((c) => c.text).join(' ')}, outside loopback and SIGIL_LAN_RANGES`);
    // systemd merges the allow lists of every parent slice into the service's own filter
    // (bpf-firewall.c walks the unit and its slices), and an allowed address beats IPAddressDeny=any:
    // a slice's IPAddressAllow= opens the service as surely as its own.
    const slices = await loadSlices(ctx.host, s);
    for (const slice of slices) {
      const items = slice.s.list('Slice', 'IPAddressAllow') ?? [];
      const parsed = ipItems(items);
      const where = slice.s.where('Slice', 'IPAddressAllow');
      if (parsed.bad.length > 0) return fail(`IPAddressAllow of ${slice.name} (${where}) has entries that are not addresses: ${parsed.bad.join(' ')}`);
      const wider = parsed.cidrs.filter((c) => !coveredBy(c, permitted));
      if (wider.length > 0) return fail(`IPAddressAllow of ${slice.name} (${where}) lets in ${wider.map((c) => c.text).join(' ')}, outside loopback and SIGIL_LAN_RANGES: systemd adds a parent slice's allow list to the service's`);
      allow.push(...parsed.cidrs);
    }
    const missing = [...LOOPBACK, ...ctx.conf.lanRanges].filter((c) => !coveredBy(c, allow));
    if (missing.length > 0) return fail(`IPAddressAllow misses ${missing.map((c) => c.text).join(' ')}`);
    return pass(`IPAddressDeny=any, IPAddressAllow=${allowItems.join(' ')}; the slices it runs in (${slices.map((x) => x.name).join(', ')}) allow nothing more`);
  }),
  unitControl('unit.memory-deny-write-execute', 'MemoryDenyWriteExecute only with node --jitless', (s) => {
    const a = s.last('Service', 'MemoryDenyWriteExecute');
    const exec = s.last('Service', 'ExecStart')?.value ?? '';
    const jitless = /(^|\s)--jitless(\s|$)/.test(exec);
    if (a && iniBoolean(a.value) === true) {
      return jitless
        ? pass('MemoryDenyWriteExecute=yes with node --jitless')
        : fail(`MemoryDenyWriteExecute=yes (${a.file}:${a.line}) without node --jitless: V8's JIT needs W+X memory, node would abort`);
    }
    return jitless
      ? fail('node runs --jitless but MemoryDenyWriteExecute is off: set it, W^X costs nothing more then')
      : pass("off by design: V8's JIT needs W+X memory, and node 20 --jitless cannot run the server (no WebAssembly for undici)");
  }),
  unitControl('unit.limit-core', 'LimitCORE=0', (s) => {
    const a = s.last('Service', 'LimitCORE');
    if (!a) return fail('LimitCORE= is not set: the service inherits the core limit');
    return a.value === '0' || a.value === '0:0'
      ? pass(`LimitCORE=${a.value}`)
      : fail(`LimitCORE=${a.value} at ${a.file}:${a.line}, expected 0`);
  }),
  unitControl('unit.preload', 'a preloaded library (LD_PRELOAD) only root can change', (s, ctx) => judgePreload(s, ctx)),
  unitControl('unit.environment', 'no NODE_OPTIONS, NODE_PATH, LD_LIBRARY_PATH, LD_AUDIT or OPENSSL_CONF for the service, from any source', (s, ctx) => judgeEnvironment(s, ctx)),
];
