#!/usr/bin/env node
/**
 * `make dist`: a self-contained archive of the `sigil` CLI that runs with a stock Node (>= 20.19)
 * on Linux or Windows, without npm and without a compiler.
 *
 *   node client-cli/packaging/make-dist.mjs [--out DIR]     (after `npx tsc -p tsconfig.build.json`)
 *
 * Produces DIR/sigil-cli-<version>.tar.gz (default DIR: build/) and DIR/SHA256SUMS (its SHA-256, in
 * `sha256sum -c` form). The archive is owned by 0/0 (numeric), sorted by name, stamped with
 * SOURCE_DATE_EPOCH (default: the last commit's time) and gzip'd without a name or time, so
 * extracting it as root gives root-owned files and the same inputs give the same bytes. It holds
 * sigil-cli-<version>/ with
 *   dist/client-cli/…, dist/pki/…   the compiled modules the CLI can reach, and nothing else
 *   node_modules/…                  the packages they import, with their own dependencies
 *   package.json                    {"type":"module"} so Node loads the .js files as ESM
 *   sigil, sigil.cmd                launchers for sh and Windows cmd
 * The file set is the CLI's runtime import graph, walked from dist/client-cli/main.js through
 * static and literal dynamic imports; it fails if that graph reaches a native addon (a package
 * with binding.gyp or a .node file) or the server's packages.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { constants as zlibConstants, gzipSync } from 'node:zlib';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const ENTRY = join(REPO, 'dist', 'client-cli', 'main.js');

/** Packages that must never be in the CLI: native addons and server-only dependencies. */
export const FORBIDDEN_PACKAGES = ['argon2', 'sqlite3', 'hono', '@hono/node-server'];

// import … from '…' / export … from '…' / import '…' / import('…')
const SPECIFIERS = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(['"])([^'"\n]+)\1/g;

function packageNameOf(spec) {
  const parts = spec.split('/');
  return spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

function isBuiltin(spec) {
  return spec.startsWith('node:') || builtinModules.includes(spec);
}

/**
 * The CLI's runtime closure: the repo files reached from `entry` and the package names they
 * import (before package dependencies are added).
 */
export function importGraph(entry = ENTRY) {
  const files = new Set();
  const packages = new Set();
  const queue = [entry];
  while (queue.length) {
    const file = queue.pop();
    if (files.has(file)) continue;
    files.add(file);
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(SPECIFIERS)) {
      const spec = m[2];
      if (isBuiltin(spec)) continue;
      if (spec.startsWith('.')) {
        const target = resolve(dirname(file), spec);
        if (!existsSync(target)) throw new Error(`${relative(REPO, file)} imports ${spec}, which does not exist`);
        queue.push(target);
      } else {
        packages.add(packageNameOf(spec));
      }
    }
  }
  return { files: [...files].sort(), packages: [...packages].sort() };
}

/** Where Node would find `name` from `fromDir` (walking up node_modules folders). */
function findPackageDir(name, fromDir) {
  for (let d = fromDir; ; d = dirname(d)) {
    const candidate = join(d, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    if (dirname(d) === d) throw new Error(`package ${name} not found from ${fromDir}`);
  }
}

/** Package directories needed at run time: the imported ones and their dependencies, transitively. */
export function packageClosure(names, fromDir = join(REPO, 'dist', 'client-cli')) {
  const dirs = new Map();
  const queue = names.map((n) => [n, fromDir]);
  while (queue.length) {
    const [name, from] = queue.pop();
    const dir = findPackageDir(name, from);
    if (dirs.has(dir)) continue;
    dirs.set(dir, name);
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    for (const dep of Object.keys(pkg.dependencies ?? {})) queue.push([dep, dir]);
  }
  return dirs;
}

/** Reasons a package directory is not portable: a native addon or a forbidden package. */
export function nativeProblems(dir, name) {
  const problems = [];
  if (FORBIDDEN_PACKAGES.includes(name)) problems.push(`${name} is a server-only or native package`);
  if (existsSync(join(dir, 'binding.gyp'))) problems.push(`${name} has binding.gyp`);
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  if (pkg.gypfile) problems.push(`${name} declares gypfile`);
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.node')) problems.push(`${name} ships ${relative(dir, p)}`);
    }
  };
  walk(dir);
  return problems;
}

const SH_LAUNCHER = `#!/bin/sh
# sigil launcher: runs the bundled CLI with the node on PATH.
here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
exec node "$here/dist/client-cli/main.js" "$@"
`;

const CMD_LAUNCHER = '@echo off\r\nrem sigil launcher: runs the bundled CLI with the node on PATH.\r\nnode "%~dp0dist\\client-cli\\main.js" %*\r\n';

/** Seconds stamped on every archived file: SOURCE_DATE_EPOCH, else the last commit's time, else now. */
function sourceDateEpoch() {
  const env = process.env.SOURCE_DATE_EPOCH;
  if (env !== undefined && env !== '') {
    if (!/^\d+$/.test(env)) throw new Error(`SOURCE_DATE_EPOCH must be a whole number of seconds: '${env}'`);
    return env;
  }
  try {
    const t = execFileSync('git', ['-C', REPO, 'log', '-1', '--format=%ct'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    if (/^\d+$/.test(t)) return t;
  } catch {
    // not a git checkout: fall through
  }
  return String(Math.floor(Date.now() / 1000));
}

/** Builds the archive; returns its path and the staged folder. */
export function makeDist({ outDir = join(REPO, 'build') } = {}) {
  if (!existsSync(ENTRY)) throw new Error(`${relative(REPO, ENTRY)} is missing: run npx tsc -p tsconfig.build.json first`);
  const repoPkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8'));
  const version = repoPkg.version;
  const cliVersion = /VERSION = '([^']+)'/.exec(readFileSync(join(REPO, 'dist', 'client-cli', 'version.js'), 'utf8'))?.[1];
  if (cliVersion !== version) throw new Error(`client-cli/version.ts says ${cliVersion}, package.json says ${version}`);

  const { files, packages } = importGraph();
  const closure = packageClosure(packages);
  const problems = [...closure].flatMap(([dir, name]) => nativeProblems(dir, name));
  if (problems.length) throw new Error(`the CLI's runtime graph is not portable:\n  ${problems.join('\n  ')}`);

  const name = `sigil-cli-${version}`;
  const stage = join(outDir, name);
  rmSync(stage, { recursive: true, force: true });
  mkdirSync(stage, { recursive: true });
  for (const f of files) {
    const target = join(stage, relative(REPO, f));
    mkdirSync(dirname(target), { recursive: true });
    cpSync(f, target);
  }
  for (const [dir] of closure) {
    // Keep each package at the same place relative to node_modules (nested ones stay nested).
    const rel = relative(REPO, dir);
    cpSync(dir, join(stage, rel), { recursive: true, filter: (src) => !src.slice(dir.length).split(sep).includes('node_modules') });
  }
  writeFileSync(
    join(stage, 'package.json'),
    JSON.stringify({ name: 'sigil-cli', version, private: true, type: 'module', engines: repoPkg.engines, bin: { sigil: 'dist/client-cli/main.js' } }, null, 2) + '\n',
  );
  writeFileSync(join(stage, 'sigil'), SH_LAUNCHER);
  chmodSync(join(stage, 'sigil'), 0o755);
  writeFileSync(join(stage, 'sigil.cmd'), CMD_LAUNCHER);
  const archive = join(outDir, `${name}.tar.gz`);
  // Owned by root (numeric 0/0, not the builder's uid), fixed order and time, no group/other write:
  // as bundle/make-bundle.sh makes its payload.
  const tarBytes = execFileSync(
    'tar',
    ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', `--mtime=@${sourceDateEpoch()}`, '--mode=go-w', '--format=gnu', '-cf', '-', '-C', outDir, name],
    { maxBuffer: 1 << 30 },
  );
  // Node's gzip header carries no file name and a zero time, so the bytes depend only on the tar.
  const gz = gzipSync(tarBytes, { level: zlibConstants.Z_BEST_COMPRESSION });
  writeFileSync(archive, gz);
  const sum = createHash('sha256').update(gz).digest('hex');
  writeFileSync(join(outDir, 'SHA256SUMS'), `${sum}  ${name}.tar.gz\n`);
  return { archive, sha256sums: join(outDir, 'SHA256SUMS'), sha256: sum, stage, files: files.length, packages: [...closure.values()].sort() };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const i = process.argv.indexOf('--out');
  const outDir = i > 0 ? resolve(process.argv[i + 1]) : undefined;
  try {
    const r = makeDist({ outDir });
    process.stdout.write(`${relative(process.cwd(), r.archive)}: ${r.files} modules, packages ${r.packages.join(', ')}\n`);
    process.stdout.write(`${relative(process.cwd(), r.sha256sums)}: sha256 ${r.sha256}\n`);
  } catch (err) {
    process.stderr.write(`error: ${err.message}\n`);
    process.exitCode = 1;
  }
}
