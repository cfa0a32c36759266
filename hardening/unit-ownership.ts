/**
 * Only root can change what the server runs and loads: unit.files (the unit, its drop-ins and
 * slices, its environment files, the programs its `Exec*=` lines start and the tree ExecStart's
 * script lives in) and unit.preload (every library preloaded into the server). One module because
 * both rest on {@link judgePath}: whoever can write a file, or any directory on its way, decides
 * what runs with the vault keys.
 */
import type { Dirent, Stats } from 'node:fs';
import { lstat, readdir, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fail, pass, type CheckContext, type ControlResult } from './control.js';
import { changeableByOthers, isMissing, type Host } from './host.js';
import type { IniSettings } from './ini-file.js';
import { parseEnvFile } from './systemd-env.js';
import { environmentFiles, RUNTIME_ENVIRONMENT, serviceEnvironment, unsetByName } from './unit-environment.js';
import { programPaths } from './unit-exec.js';

/** What {@link judgePath} found at a path: whether it exists, and why someone other than root could change it. */
type PathVerdict = { readonly missing: true; readonly why?: string } | { readonly missing: false; readonly path: string; readonly st: Stats; readonly why?: string };

/**
 * Who besides root could put something else at `hostPath`: the file itself, and every directory a
 * name of its path is looked up in (links followed inside the root) — whoever can write one of those
 * can put another file, or a link, under that name, even where nothing is yet.
 */
async function judgePath(host: Host, hostPath: string): Promise<PathVerdict> {
  let under: string | undefined;
  const path = await host.walk(hostPath, {
    lookIn: async (dir) => {
      const why = under === undefined ? changeableByOthers(await stat(dir)) : undefined;
      if (why) under = `is under /${relative(host.root, dir)}, which is ${why}`;
    },
  });
  let st: Stats;
  try {
    st = await lstat(path);
  } catch (err) {
    if (isMissing(err)) return under === undefined ? { missing: true } : { missing: true, why: under };
    throw err;
  }
  const own = changeableByOthers(st);
  const why = under ?? (own && `is ${own}`);
  return why === undefined ? { missing: false, path, st } : { missing: false, path, st, why };
}

// ---- unit.files: only root can change what the service is and what it runs ----

const DECIDES_SERVER = 'whoever can change it decides what the server runs, with the vault keys';

/**
 * The first entry under `dir` (a directory on this machine) that someone other than root could
 * change, as a host path with the reason. Links are not followed (their own mode means nothing; what
 * they point at inside the tree is scanned where it lies).
 */
async function firstChangeableUnder(host: Host, dir: string): Promise<string | undefined> {
  let entries: Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if (isMissing(err)) return undefined;
    throw err;
  }
  for (const e of entries) {
    if (e.isSymbolicLink()) continue;
    const path = join(dir, e.name);
    const why = changeableByOthers(await lstat(path));
    if (why) return `/${relative(host.root, path)} is ${why}`;
    if (e.isDirectory()) {
      const below = await firstChangeableUnder(host, path);
      if (below) return below;
    }
  }
  return undefined;
}

/**
 * unit.files: the unit and its drop-ins, its environment files (missing ones included: whoever can
 * write their directory can create one), the programs its Exec*= lines start and the tree ExecStart's
 * script lives in are root's alone; an environment file that holds the master passphrase is
 * readable by root alone.
 */
export async function judgeFiles(s: IniSettings, ctx: CheckContext, files: string[]): Promise<ControlResult> {
  const host = ctx.host;
  for (const file of files) {
    const v = await judgePath(host, file);
    if (v.why) return fail(`${file} ${v.why}: ${DECIDES_SERVER}`);
  }
  let envFilesJudged = 0;
  for (const e of environmentFiles(s)) {
    const path = e.file;
    if (path === undefined) continue; // unit.preload fails a path check cannot expand
    const v = await judgePath(host, path);
    if (v.why) return fail(`EnvironmentFile=${e.value} at ${e.at}: ${path} ${v.why}: ${DECIDES_SERVER} (NODE_OPTIONS, LD_PRELOAD)`);
    if (v.missing) continue;
    envFilesJudged++;
    const text = await host.readText(path);
    const secret = text !== undefined && parseEnvFile(text).some((e) => e.name === 'SIGIL_MASTER_PASSPHRASE');
    if (secret && (v.st.mode & 0o044) !== 0) {
      return fail(`EnvironmentFile=${e.value} at ${e.at}: ${path} holds SIGIL_MASTER_PASSPHRASE and is readable by group or others (mode ${(v.st.mode & 0o7777).toString(8).padStart(4, '0')}), expected 0600`);
    }
  }
  const programs = programPaths(s);
  for (const p of programs) {
    const v = await judgePath(host, p.path);
    if (v.why) return fail(`${p.at}: ${p.path} ${v.why}: ${DECIDES_SERVER}`);
  }
  const script = programs.find((p) => p.path.endsWith('/dist/server/main.js'));
  if (script) {
    // The whole installed tree (dist/, node_modules/, package.json) is code the server loads.
    const prefix = script.path.slice(0, -'/dist/server/main.js'.length) || '/';
    const v = await judgePath(host, prefix);
    if (!v.missing) {
      const why = await firstChangeableUnder(host, v.path);
      if (why) return fail(`${why}, in the program tree of ${script.at}: ${DECIDES_SERVER}`);
    }
  }
  return pass(
    `${files.length} unit file(s), ${envFilesJudged} environment file(s) and ${programs.length} program path(s)${script ? ' with their tree' : ''}: root's alone`,
  );
}

// ---- unit.preload: a library preloaded into the server (jemalloc) is one only root can change ----

const isJemalloc = (lib: string): boolean => /\/libjemalloc\.so[^/]*$/.test(lib);

const RUNS_IN_SERVER = 'whoever can change a preloaded library runs code in the server, which holds the vault keys';

/**
 * Why the library at `hostPath` is unsafe to preload, or undefined when only root can change it:
 * it and every directory a name of its path is looked up in (links followed inside the root).
 */
async function unsafeLibrary(host: Host, hostPath: string): Promise<string | undefined> {
  const v = await judgePath(host, hostPath);
  if (v.why) return `${v.why}: ${RUNS_IN_SERVER}`;
  if (v.missing) return 'does not exist: the loader would skip it, so it names no library check can vouch for';
  return v.st.isFile() ? undefined : 'is not a regular file';
}

/** The system-wide preload list (ld.so(8)): loaded into every program, the server too. */
const LD_SO_PRELOAD = '/etc/ld.so.preload';

/** Why one preload entry is unsafe, or undefined. */
async function unsafeEntry(host: Host, lib: string): Promise<string | undefined> {
  if (!lib.startsWith('/')) return 'is not an absolute path: the loader would search its library path for it';
  if (lib.includes('$')) return 'has a $ token ($LIB, $PLATFORM, $ORIGIN) the loader expands, which check does not';
  return unsafeLibrary(host, lib);
}

/** unit.preload: every library in every LD_PRELOAD is an absolute path to a file only root can change. */
export async function judgePreload(s: IniSettings, ctx: CheckContext): Promise<ControlResult> {
  const host = ctx.host;
  const read = await serviceEnvironment(s, host, (name) => name === 'LD_PRELOAD');
  if (!read.ok) return fail(read.reason);
  // Every one is judged, also one UnsetEnvironment= removes: a path only others control has no place in the unit.
  const viaEnv: string[] = [];
  for (const p of read.found) {
    // The loader splits LD_PRELOAD at spaces and colons, and skips empty entries.
    for (const lib of p.value.split(/[ :]/).filter(Boolean)) {
      const why = await unsafeEntry(host, lib);
      if (why) return fail(`LD_PRELOAD=${p.value} at ${p.at}: ${lib} ${why}`);
      viaEnv.push(`${lib}${isJemalloc(lib) ? ' (jemalloc)' : ''} at ${p.at}`);
    }
  }
  const viaSystem: string[] = [];
  // ld.so.preload adds to LD_PRELOAD for every program; the list itself is code the server runs.
  const system = await host.readText(LD_SO_PRELOAD);
  if (system !== undefined) {
    const listWhy = await unsafeLibrary(host, LD_SO_PRELOAD);
    if (listWhy) return fail(`${LD_SO_PRELOAD} ${listWhy.replace('a preloaded library', 'the preload list')}`);
    // glibc's rtld splits it at blanks, newlines and colons.
    for (const lib of system.split(/[\s:]+/).filter(Boolean)) {
      const why = await unsafeEntry(host, lib);
      if (why) return fail(`${LD_SO_PRELOAD}: ${lib} ${why}`);
      viaSystem.push(`${lib} at ${LD_SO_PRELOAD}`);
    }
  }
  // Without an LD_PRELOAD of the unit's own (Environment=, EnvironmentFile=), or its removal, one
  // set at runtime in the manager's environment would reach the server unseen.
  const unset = unsetByName(s);
  if (!unset.ok) return fail(unset.reason);
  const removed = unset.names.has('LD_PRELOAD');
  if (!removed && !read.found.some((a) => !a.manager)) {
    return fail(`the unit neither sets LD_PRELOAD nor names it in UnsetEnvironment=: one in ${RUNTIME_ENVIRONMENT} would reach the server; re-run apply`);
  }
  // The conf's SIGIL_ALLOCATOR says what apply was asked to render (auto: either is correct), held
  // to the LD_PRELOAD in effect: the last one read (EnvironmentFile= overrides Environment=), or
  // none when UnsetEnvironment= removes it.
  const effective = removed ? [] : (read.found.at(-1)?.value ?? '').split(/[ :]/).filter(Boolean);
  if (ctx.conf?.allocator === 'jemalloc' && !effective.some(isJemalloc)) return fail('SIGIL_ALLOCATOR=jemalloc, but the unit preloads no jemalloc: re-run apply');
  if (ctx.conf?.allocator === 'glibc' && effective.length > 0) return fail(`SIGIL_ALLOCATOR=glibc, but the unit preloads ${effective.join(', ')}: re-run apply`);
  // ld.so.preload is the loader's, not the environment's: UnsetEnvironment= does not reach it.
  const loaded = [...(removed ? [] : viaEnv), ...viaSystem];
  const note = removed ? ` (UnsetEnvironment=LD_PRELOAD keeps out any other${viaEnv.length > 0 ? `, ${viaEnv.join(', ')} included` : ''})` : '';
  if (loaded.length === 0) return pass(`no preloaded library: glibc malloc${note}`);
  return pass(`preloaded ${loaded.join(', ')}: each a regular file only root can change, in directories only root can change${note}`);
}
