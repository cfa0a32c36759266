/**
 * Runs the built `sigil` CLI (dist/client-cli/main.js) as a real child process, the way a user
 * or script does. Builds first (tsc -p tsconfig.build.json) when the build is missing or older
 * than any source of client-cli/ or pki/; concurrent test files share one build through a lock.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isStale as isBuildStale, sleepSync } from './build-freshness.js';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CLI_MAIN = join(REPO_ROOT, 'dist', 'client-cli', 'main.js');

const isStale = (): boolean => isBuildStale(CLI_MAIN, ['client-cli', 'pki']);
const sleep = sleepSync;

let checked = false;

/**
 * Builds when the CLI build is stale (checked once per test process). tsc writes into a private
 * folder first and the fresh `dist/client-cli` and `dist/pki` are then swapped in by rename, so a
 * CLI child started by another test file meanwhile never reads half-written modules. Type errors
 * elsewhere in the tree do not stop tsc from emitting; only a missing main.js afterwards is fatal.
 */
export function ensureCliBuilt(): void {
  if (checked || !isStale()) {
    checked = true;
    return;
  }
  const lock = join(REPO_ROOT, 'dist', '.cli-build.lock');
  mkdirSync(dirname(lock), { recursive: true });
  const deadline = Date.now() + 240_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      // Another test file is building; a lock older than the deadline is from a crashed run.
      if (Date.now() > deadline) {
        rmSync(lock, { recursive: true, force: true });
        continue;
      }
      sleep(500);
    }
  }
  try {
    if (!isStale()) return;
    const staging = join(REPO_ROOT, 'dist', `.cli-build-${process.pid}`);
    const tsc = join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    spawnSync(process.execPath, [tsc, '-p', join(REPO_ROOT, 'tsconfig.build.json'), '--outDir', staging], { cwd: REPO_ROOT, stdio: 'ignore' });
    statSync(join(staging, 'client-cli', 'main.js'));
    for (const part of ['pki', 'client-cli']) {
      const live = join(REPO_ROOT, 'dist', part);
      const old = `${live}.old-${process.pid}`;
      if (existsSync(live)) renameSync(live, old);
      renameSync(join(staging, part), live);
      rmSync(old, { recursive: true, force: true });
    }
    rmSync(staging, { recursive: true, force: true });
  } finally {
    rmSync(lock, { recursive: true, force: true });
    checked = true;
  }
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Wall time of the run, ms. */
  ms: number;
}

export interface RunCliOptions {
  /** Added as `--profile DIR` before the arguments. */
  profile?: string;
  /** Extra environment; the child gets only PATH, HOME, SYSTEMROOT/TEMP (Windows) and these. */
  env?: Record<string, string | undefined>;
  /** Written to stdin, which is then closed. Without it stdin is an open pipe (never a TTY). */
  input?: string;
  /** Leave stdin open and unanswered (to prove a command does not wait on it). */
  keepStdinOpen?: boolean;
  /** Kill after this long; default 60 s. */
  timeoutMs?: number;
  /** Node flags placed before the script, e.g. ['--import', preload]. */
  nodeArgs?: string[];
  /** Script to run instead of the repo's build (e.g. an unpacked dist archive). */
  main?: string;
  cwd?: string;
}

/** Runs `node dist/client-cli/main.js [--profile DIR] ...args` and collects its output. */
export function runCli(args: string[], opts: RunCliOptions = {}): Promise<CliResult> {
  if (!opts.main) ensureCliBuilt();
  const env: Record<string, string> = {};
  for (const k of ['PATH', 'HOME', 'SYSTEMROOT', 'TEMP', 'TMP', 'TMPDIR']) if (process.env[k]) env[k] = process.env[k] as string;
  for (const [k, v] of Object.entries(opts.env ?? {})) if (v !== undefined) env[k] = v;
  const argv = [...(opts.nodeArgs ?? []), opts.main ?? CLI_MAIN, ...(opts.profile ? ['--profile', opts.profile] : []), ...args];
  const started = Date.now();
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, argv, { env, cwd: opts.cwd ?? REPO_ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolveRun({ code, signal, stdout, stderr, ms: Date.now() - started });
    });
    if (opts.input !== undefined) child.stdin.end(opts.input);
    else if (!opts.keepStdinOpen) child.stdin.end();
  });
}

/** Runs the CLI in one profile with fixed environment; each call may add more. */
export interface ProfileRunner {
  profile: string;
  run(args: string[], opts?: Omit<RunCliOptions, 'profile'>): Promise<CliResult>;
  /** Runs and parses stdout as JSON, failing with the stderr when the exit code is not 0. */
  json<T = any>(args: string[], opts?: Omit<RunCliOptions, 'profile'>): Promise<T>;
}

export function profileRunner(profile: string, env: Record<string, string | undefined> = {}): ProfileRunner {
  const run = (args: string[], opts: Omit<RunCliOptions, 'profile'> = {}) =>
    runCli(args, { ...opts, profile, env: { ...env, ...(opts.env ?? {}) } });
  return {
    profile,
    run,
    async json(args, opts) {
      const r = await run([...args, '--json'], opts);
      if (r.code !== 0) throw new Error(`sigil ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
      return JSON.parse(r.stdout);
    },
  };
}
