/**
 * Controls `unit.*`: the sigil-server systemd unit exists and carries the sandbox issue 7 asks for.
 * The unit is read with its drop-ins (`sigil-server.service.d/*.conf`), because a drop-in can undo
 * any directive of the main file.
 */
import { coveredBy, LOOPBACK, parseCidr, type Cidr } from './cidr.js';
import { fail, pass, type CheckContext, type Control, type ControlResult } from './control.js';
import { iniBoolean, loadIniWithDropIns, type IniSettings } from './ini-file.js';

/** Name of the unit. */
export const UNIT_NAME = 'sigil-server.service';
/** The service user that owns /var/lib/sigil. */
export const SERVICE_USER = 'sigil';

/** Unit search path, most important first (systemd.unit(5)). */
const UNIT_DIRS = [
  '/etc/systemd/system',
  '/run/systemd/system',
  '/usr/local/lib/systemd/system',
  '/usr/lib/systemd/system',
  '/lib/systemd/system',
];

/** Address families the server needs: TCP/IP and local sockets. */
const ALLOWED_FAMILIES = new Set(['AF_INET', 'AF_INET6', 'AF_UNIX']);

type LoadedUnit = { ok: true; files: string[]; s: IniSettings } | { ok: false; reason: string };
const cache = new WeakMap<CheckContext, Promise<LoadedUnit>>();

async function loadUnit(ctx: CheckContext): Promise<LoadedUnit> {
  const masked = await ctx.host.linkTarget(`/etc/systemd/system/${UNIT_NAME}`);
  if (masked === '/dev/null') return { ok: false, reason: `${UNIT_NAME} is masked (linked to /dev/null)` };
  const loaded = await loadIniWithDropIns(ctx.host, UNIT_DIRS, UNIT_NAME, { requireMain: true });
  if (!loaded) return { ok: false, reason: `${UNIT_NAME} not found in ${UNIT_DIRS.join(', ')}` };
  return { ok: true, files: loaded.files, s: loaded.settings };
}

function unitControl(
  id: string,
  title: string,
  judge: (s: IniSettings, ctx: CheckContext, files: string[]) => ControlResult,
): Control {
  return {
    id,
    title,
    async check(ctx) {
      let loading = cache.get(ctx);
      if (!loading) cache.set(ctx, (loading = loadUnit(ctx)));
      const unit = await loading;
      return unit.ok ? judge(unit.s, ctx, unit.files) : fail(unit.reason);
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
  unitControl('unit.present', 'sigil-server.service is installed', (s, _ctx, files) => {
    const exec = s.last('Service', 'ExecStart');
    if (!exec) return fail('the unit has no ExecStart=');
    if (!/\bdist\/server\/main\.js\s+start\b/.test(exec.value)) {
      return fail(`ExecStart= does not run dist/server/main.js start: "${exec.value}"`);
    }
    return pass(`found ${files.join(' + ')}`);
  }),
  unitControl('unit.user', 'runs as the dedicated user sigil', (s) => {
    const user = s.last('Service', 'User');
    if (!user) return fail('User= is not set: the service would run as root');
    return user.value === SERVICE_USER
      ? pass(`User=${user.value}`)
      : fail(`User=${user.value} at ${user.file}:${user.line}, expected ${SERVICE_USER}`);
  }),
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
  unitControl('unit.ip-address-policy', 'IPAddressDeny=any, IPAddressAllow= loopback and the LAN ranges only', (s, ctx) => {
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
    const missing = [...LOOPBACK, ...ctx.conf.lanRanges].filter((c) => !coveredBy(c, allow));
    if (missing.length > 0) return fail(`IPAddressAllow misses ${missing.map((c) => c.text).join(' ')}`);
    return pass(`IPAddressDeny=any, IPAddressAllow=${allowItems.join(' ')}`);
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
];
