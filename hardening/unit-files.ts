/**
 * Finding and loading the sigil-server unit as systemd does: the fragment that wins on the unit
 * search path (or that masks it), the names it has through links (aliases), and every drop-in
 * directory of each name and its dashed prefixes. A drop-in can undo any directive of the main file,
 * so a control that read the fragment alone would vouch for settings systemd never applies. Also the
 * slices the service runs in, whose IPAddressAllow= reaches it. The unit is loaded once per check
 * run and shared by every `unit.*` control.
 */
import { basename } from 'node:path';
import type { CheckContext } from './control.js';
import type { Host } from './host.js';
import { firstFile, readIniFiles, type IniSettings } from './ini-file.js';

/** Name of the unit. */
export const UNIT_NAME = 'sigil-server.service';

/**
 * The system manager's unit search path, most important first (systemd.unit(5), and
 * `systemd-analyze unit-paths` on Debian 12). `systemctl set-property` writes to the `.control`
 * directories, portable services attach to the `.attached` ones. Debian builds systemd for a split
 * /usr, so /lib comes before /usr/lib; on a merged /usr they are one directory.
 */
const UNIT_PATH = [
  '/etc/systemd/system.control',
  '/run/systemd/system.control',
  '/run/systemd/transient',
  '/run/systemd/generator.early',
  '/etc/systemd/system',
  '/etc/systemd/system.attached',
  '/run/systemd/system',
  '/run/systemd/system.attached',
  '/run/systemd/generator',
  '/usr/local/lib/systemd/system',
  '/lib/systemd/system',
  '/usr/lib/systemd/system',
  '/run/systemd/generator.late',
];

type LoadedUnit = { ok: true; files: string[]; s: IniSettings } | { ok: false; reason: string };
const cache = new WeakMap<CheckContext, Promise<LoadedUnit>>();

async function loadUnit(ctx: CheckContext): Promise<LoadedUnit> {
  const fragment = await findFragment(ctx.host);
  if (!fragment) return { ok: false, reason: `${UNIT_NAME} not found in ${UNIT_PATH.join(', ')}` };
  if (fragment.masked) return { ok: false, reason: `${UNIT_NAME} is masked (${fragment.path} is empty or linked to /dev/null)` };
  const dirs = dropInDirs([UNIT_NAME, ...(await aliasesOf(ctx.host))]);
  const dropIns = await ctx.host.confDirFiles(dirs);
  return { ok: true, files: [fragment.path, ...dropIns], s: await readIniFiles(ctx.host, { file: fragment.path, text: fragment.text }, dropIns) };
}

/** The unit of `ctx`, loaded on the first call and shared by every `unit.*` control of that run. */
export function unitOf(ctx: CheckContext): Promise<LoadedUnit> {
  let loading = cache.get(ctx);
  if (!loading) cache.set(ctx, (loading = loadUnit(ctx)));
  return loading;
}

/**
 * The unit file systemd loads: the first on the search path. It is masked when that file is empty or
 * a link to /dev/null (systemd's null_or_empty()), even if a lower directory holds the real unit.
 */
async function findFragment(host: Host): Promise<{ path: string; text: string; masked: boolean } | undefined> {
  for (const dir of UNIT_PATH) {
    const path = `${dir}/${UNIT_NAME}`;
    if ((await host.linkTarget(path)) === '/dev/null') return { path, text: '', masked: true };
    const text = await host.readText(path);
    if (text !== undefined) return { path, text, masked: text === '' };
  }
  return undefined;
}

/**
 * Other names of the unit: a `*.service` link on the search path to sigil-server.service (what
 * `Alias=` makes). systemd applies the drop-ins of those names too. Only the first file of a name
 * counts, as in systemd's unit name map.
 */
async function aliasesOf(host: Host): Promise<string[]> {
  const first = new Map<string, string>();
  for (const dir of UNIT_PATH) {
    for (const name of await host.list(dir)) {
      if (name.endsWith('.service') && name !== UNIT_NAME && !first.has(name)) first.set(name, `${dir}/${name}`);
    }
  }
  const aliases: string[] = [];
  for (const [name, path] of first) {
    const target = await host.linkTarget(path);
    if (target !== undefined && basename(target) === UNIT_NAME) aliases.push(name);
  }
  return aliases.sort();
}

/**
 * The drop-in directories systemd reads for a unit, in its order (unit_file_find_dropin_paths()):
 * for each name (the unit's own, then its aliases) and each directory of the search path, `<name>.d`
 * then the prefix directories of a dashed name (`sigil-.service.d`); last, the top-level
 * `service.d` of every directory. A drop-in file name found in an earlier directory of this list
 * hides the same name in a later one, so `/usr/lib/…/sigil-server.service.d/10-x.conf` hides
 * `/etc/systemd/system/service.d/10-x.conf` (checked against systemd 252). The files are then
 * applied in the order of their names, whatever their directory.
 */
function dropInDirs(names: readonly string[], type = 'service'): string[] {
  const dirs: string[] = [];
  for (const name of names) {
    for (const dir of UNIT_PATH) dirs.push(...[name, ...prefixNames(name, type)].map((n) => `${dir}/${n}.d`));
  }
  for (const dir of UNIT_PATH) dirs.push(`${dir}/${type}.d`);
  return dirs;
}

/**
 * The names a dashed unit name is cut down to, after each dash from the right: `a-b-c.service` →
 * `a-b-.service`, `a-.service` (systemd.unit(5)). A leading dash does not count.
 */
function prefixNames(name: string, type = 'service'): string[] {
  const stem = name.slice(0, -`.${type}`.length);
  const names: string[] = [];
  for (let i = stem.length - 2; i > 0; i--) if (stem[i] === '-') names.push(`${stem.slice(0, i + 1)}.${type}`);
  return names;
}

/**
 * The slices the service runs in, innermost first: its `Slice=` (default system.slice), then each
 * parent its dashed name encodes (`a-b.slice` → `a.slice`), then the root `-.slice`
 * (systemd.slice(5)).
 */
function sliceChain(s: IniSettings): string[] {
  const own = s.last('Service', 'Slice')?.value || 'system.slice';
  const chain = [own];
  const stem = own === '-.slice' ? '' : own.slice(0, -'.slice'.length);
  for (let i = stem.length - 1; i > 0; i--) if (stem[i] === '-') chain.push(`${stem.slice(0, i)}.slice`);
  if (own !== '-.slice') chain.push('-.slice');
  return chain;
}

/**
 * The `[Slice]` settings of each slice of {@link sliceChain}: its unit file (the first on the search
 * path; a slice without one, like a built-in system.slice, has only its drop-ins) and drop-ins.
 */
export async function loadSlices(host: Host, s: IniSettings): Promise<{ name: string; s: IniSettings; files: string[] }[]> {
  const out: { name: string; s: IniSettings; files: string[] }[] = [];
  for (const name of sliceChain(s)) {
    const main = await firstFile(host, UNIT_PATH, name);
    const dropIns = await host.confDirFiles(dropInDirs([name], 'slice'));
    out.push({ name, s: await readIniFiles(host, main, dropIns), files: main ? [main.file, ...dropIns] : dropIns });
  }
  return out;
}
