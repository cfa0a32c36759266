/**
 * Test helpers for hardening/: trees standing for a host, built by the real `hardening/apply`.
 */
import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Test } from 'tap';
import { runChecks } from '../../../hardening/index.js';
import { tmpDir } from '../../helpers/tmp.js';

/** Repository root. */
export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const APPLY = join(REPO, 'hardening/apply');
export const EXAMPLE_CONF = join(REPO, 'hardening/hardening.conf.example');

/** A conf with known values (the example's, with an admin range). */
export const CONF = `SIGIL_PORT=8443
SIGIL_LAN_RANGES="10.0.0.0/8 192.168.0.0/16 fd00::/8"
SIGIL_ADMIN_RANGE=""
SIGIL_SSH_PORT=22
SIGIL_MASTER_KEY_FILE=/media/sigil-key/master.key
SIGIL_JITLESS=no
SIGIL_NODE=/usr/bin/node
`;

export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program to completion; never rejects on a non-zero exit. */
export function runProgram(file: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Ran> {
  return new Promise((done, reject) => {
    execFile(file, args, { env, timeout: 60_000 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') return reject(err);
      done({ code: err ? (err.code as number) : 0, stdout, stderr });
    });
  });
}

/** Runs hardening/apply. */
export function runApply(args: string[]): Promise<Ran> {
  // Never let a developer's SSH session change what apply decides.
  const env = { ...process.env };
  delete env.SSH_CONNECTION;
  return runProgram(APPLY, args, env);
}

/** Writes a host file into a tree, creating directories. */
export function put(root: string, hostPath: string, text: string): void {
  mkdirSync(dirname(join(root, hostPath)), { recursive: true });
  writeFileSync(join(root, hostPath), text);
}

/** Rewrites a host file of a tree. */
export function edit(root: string, hostPath: string, fn: (text: string) => string): void {
  const path = join(root, hostPath);
  const before = readFileSync(path, 'utf8');
  const after = fn(before);
  if (after === before) throw new Error(`edit of ${hostPath} changed nothing`);
  writeFileSync(path, after);
}

/** A fresh temp tree hardened by the real apply with `conf` (default {@link CONF}). */
export async function hardenedTree(t: { teardown(fn: () => void): void }, conf = CONF): Promise<string> {
  const root = tmpDir(t, 'sigil-hardened-');
  put(root, '/etc/sigil/hardening.conf', conf);
  const ran = await runApply(['--root', root]);
  if (ran.code !== 0) throw new Error(`apply failed (${ran.code}): ${ran.stderr}`);
  return root;
}

/**
 * Where apply looks first for libjemalloc2's library on this machine (by `uname -m`, as apply does);
 * on a machine without a Debian multiarch name, the next place it looks.
 */
export const JEMALLOC = (() => {
  const multiarch = ({ x86_64: 'x86_64-linux-gnu', aarch64: 'aarch64-linux-gnu' } as Record<string, string>)[
    execFileSync('uname', ['-m'], { encoding: 'utf8' }).trim()
  ];
  return multiarch ? `/usr/lib/${multiarch}/libjemalloc.so.2` : '/usr/lib64/libjemalloc.so.2';
})();

/**
 * Lays a stand-in for a shared library into a tree: a regular file of `mode`, its directories 0755
 * (so that the test's umask does not decide whether they are writable by others). Returns its host path.
 */
export function fakeLibrary(root: string, hostPath = JEMALLOC, mode = 0o644): string {
  put(root, hostPath, '\x7fELF stand-in for a shared library\n');
  chmodSync(join(root, hostPath), mode);
  for (let dir = dirname(hostPath); dir !== '/'; dir = dirname(dir)) chmodSync(join(root, dir), 0o755);
  return hostPath;
}

/** Ids of the failing controls of a report. */
export function failing(report: { controls: Array<{ id: string; ok: boolean }> }): string[] {
  return report.controls.filter((c) => !c.ok).map((c) => c.id);
}

/** The reason of control `id`. */
export function reasonOf(report: { controls: Array<{ id: string; reason: string }> }, id: string): string {
  const c = report.controls.find((x) => x.id === id);
  if (!c) throw new Error(`no control ${id}`);
  return c.reason;
}

/** One control broken at a time: what `mutate` does to a hardened tree, the controls that must then fail, and the first one's reason. */
export interface ControlCase {
  name: string;
  ids: string[];
  reason: RegExp;
  mutate(root: string): void;
  /** Why this case cannot run here (e.g. it needs root to chown), or false. */
  skip?: string | false;
}

/** One test per case: a tree hardened by the real apply, the case's change, then exactly its controls fail. */
export function runControlCases(t: Test, cases: readonly ControlCase[]): void {
  for (const c of cases) {
    t.test(`when ${c.name} then ${c.ids.join(', ')} fail${c.ids.length === 1 ? 's' : ''} and nothing else`, { skip: c.skip ?? false }, async (t) => {
      const root = await hardenedTree(t);
      c.mutate(root);
      const report = await runChecks({ root });
      t.notOk(report.ok, 'check fails');
      t.same(failing(report), c.ids, 'exactly these controls fail');
      t.match(reasonOf(report, c.ids[0]!), c.reason, 'the reason names the problem');
    });
  }
}
