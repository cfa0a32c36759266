/**
 * The appliance under load, as a child process: `sigil-server init --json` into a temp data dir
 * and `sigil-server start` on it, so the server's CPU and RSS are measured apart from the load
 * generator. The child runs as the systemd unit runs it (jemalloc, MALLOC_ARENA_MAX,
 * UV_THREADPOOL_SIZE) and sees only the environment named in `childEnv`. Also where the
 * repository and the built server are.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ProfileName } from '../../pki/index.js';
import { threadPoolSize } from '../../server/threadpool.js';
import { procCpuSeconds, procRssMb } from './proc-stats.js';

/** The repository root (found from this file whether run as TS or from dist/). */
export const REPO_ROOT = ((): string => {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
})();
/** The built server binary. */
export const SERVER_MAIN = join(REPO_ROOT, 'dist', 'server', 'main.js');

/**
 * The jemalloc library `hardening/apply` would preload on this host (SIGIL_ALLOCATOR=auto: the same
 * places, in the same order), or undefined: the server then runs on glibc's malloc.
 */
export function jemallocLibrary(): string | undefined {
  const multiarch = ({ x64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu' } as Record<string, string>)[process.arch];
  const candidates = [...(multiarch ? [`/usr/lib/${multiarch}`] : []), '/usr/lib64', '/usr/lib'].map((d) => `${d}/libjemalloc.so.2`);
  return candidates.find((f) => {
    try {
      return lstatSync(f).isFile();
    } catch {
      return false;
    }
  });
}

/** What the systemd unit sets beside jemalloc (hardening/apply renders the same). */
export const JEMALLOC_CONF = 'dirty_decay_ms:1000,muzzy_decay_ms:0,oversize_threshold:33554432';

const childEnv = (extra: Record<string, string> = {}): Record<string, string> => {
  // The allocator, MALLOC_ARENA_MAX and UV_THREADPOOL_SIZE as the systemd unit sets them
  // (hardening/apply renders sigil-server.service.in); set any in the bench's environment, or in
  // BENCH_SERVER_ENV, to compare (`BENCH_SERVER_ENV=LD_PRELOAD=` runs on glibc's malloc).
  const env: Record<string, string> = { MALLOC_ARENA_MAX: '8', UV_THREADPOOL_SIZE: String(threadPoolSize()) };
  const jemalloc = jemallocLibrary();
  if (jemalloc) Object.assign(env, { LD_PRELOAD: jemalloc, MALLOC_CONF: JEMALLOC_CONF });
  for (const k of ['PATH', 'HOME', 'TMPDIR', 'UV_THREADPOOL_SIZE', 'MALLOC_ARENA_MAX', 'LD_PRELOAD', 'MALLOC_CONF']) if (process.env[k]) env[k] = process.env[k] as string;
  // Nothing else of the bench's environment reaches the server (a stray variable must not change
  // what is measured) but what BENCH_SERVER_ENV names, `K=V K2=V2`: for experiments that read one.
  for (const kv of (process.env.BENCH_SERVER_ENV ?? '').split(' ').filter(Boolean)) {
    const i = kv.indexOf('=');
    if (i > 0) env[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return { ...env, ...extra };
};

/** What `sigil-server init --json` prints (the fields the load tools use). */
export interface InitJson {
  url: string;
  ca: { root: string; chain: string };
  officer: { login: string; envelopePassword: string; p12: string; p12Password: string };
}

/**
 * `sigil-server init --json` into a fresh temp dir (or `dataDir`), then merges `config` into its
 * config.json (e.g. a cheaper argon2 for benches that are not about login).
 */
export async function initDataDir(opts: { profile?: ProfileName; config?: Record<string, unknown>; dataDir?: string } = {}): Promise<{ dataDir: string; init: InitJson }> {
  const dataDir = opts.dataDir ?? join(mkdtempSync(join(tmpdir(), 'sigil-load-')), 'data');
  const args = [SERVER_MAIN, 'init', '--data', dataDir, '--listen', '127.0.0.1:0', '--json', '--profile', opts.profile ?? 'p384'];
  const out = await new Promise<string>((res, rej) => {
    const child = spawn(process.execPath, args, { env: childEnv(), cwd: REPO_ROOT });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', rej);
    child.on('close', (code) => (code === 0 ? res(stdout) : rej(new Error(`init exited ${code}: ${stderr}`))));
  });
  const init = JSON.parse(out) as InitJson;
  if (opts.config) {
    const path = join(dataDir, 'config.json');
    const current = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
    writeFileSync(path, JSON.stringify({ ...current, ...opts.config }, null, 2));
  }
  return { dataDir, init };
}

/** A running `sigil-server start` child. */
export interface ServerProc {
  child: ChildProcess;
  pid: number;
  url: string;
  stderr(): string;
  exited: Promise<number | null>;
  /** CPU seconds (user + system) the process used so far, from /proc/<pid>/stat. */
  cpuSeconds(): number;
  /** Resident set size now and at its peak, in MiB, from /proc/<pid>/status. */
  rssMb(): { now: number; peak: number; anon: number; file: number };
  /** SIGTERM and wait. */
  stop(): Promise<number | null>;
  /** SIGKILL and wait. */
  kill(): Promise<number | null>;
}

/** Spawns `sigil-server start --data DIR` (with `nodeArgs` for node, e.g. `--cpu-prof`) and resolves once it logs its URL. */
export function startServerProc(dataDir: string, env: Record<string, string> = {}, timeoutMs = 60_000, nodeArgs: readonly string[] = []): Promise<ServerProc> {
  const child = spawn(process.execPath, [...nodeArgs, SERVER_MAIN, 'start', '--data', dataDir], { env: childEnv(env), cwd: REPO_ROOT });
  let err = '';
  child.stderr.setEncoding('utf8');
  child.stdout.resume();
  const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  const pid = child.pid!;
  return new Promise((res, rej) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      rej(new Error(`server did not start: ${err}`));
    }, timeoutMs);
    let started = false;
    child.stderr.on('data', (d: string) => {
      // Keep only the tail: a long bench must not grow this without bound.
      err = (err + d).slice(-200_000);
      const m = started ? null : /"url":"(https:\/\/[^"]+)"/.exec(err);
      if (m) {
        started = true;
        clearTimeout(timer);
        res({
          child,
          pid,
          url: m[1]!,
          stderr: () => err,
          exited,
          cpuSeconds: () => procCpuSeconds(pid),
          rssMb: () => procRssMb(pid),
          stop: () => (child.kill('SIGTERM'), exited),
          kill: () => (child.kill('SIGKILL'), exited),
        });
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      if (!started) rej(new Error(`server exited with ${code} before listening: ${err}`));
    });
  });
}

/** Resolves `p` relative to the repository root. */
export const repoPath = (...p: string[]): string => resolve(REPO_ROOT, ...p);
