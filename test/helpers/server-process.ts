/**
 * Runs the built `sigil-server` (dist/server/main.js) as a real child process. Builds first when
 * the build is older than any source of server/ or pki/ (sharing the build lock of helpers/cli.ts).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isStale as isBuildStale, sleepSync } from './build-freshness.js';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SERVER_MAIN = join(REPO_ROOT, 'dist', 'server', 'main.js');

const isStale = (): boolean => isBuildStale(SERVER_MAIN, ['server', 'pki']);
const sleep = sleepSync;

/** Builds the project when the server build is stale (type errors elsewhere do not stop emit). */
export function ensureServerBuilt(): void {
  if (!isStale()) return;
  const lock = join(REPO_ROOT, 'dist', '.cli-build.lock');
  mkdirSync(dirname(lock), { recursive: true });
  const deadline = Date.now() + 180_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      if (Date.now() > deadline) {
        rmdirSync(lock, { recursive: true } as never);
        continue;
      }
      sleep(500);
      if (!isStale()) return;
    }
  }
  try {
    if (!isStale()) return;
    const tsc = join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    spawnSync(process.execPath, [tsc, '-p', join(REPO_ROOT, 'tsconfig.build.json')], { cwd: REPO_ROOT, stdio: 'ignore' });
    statSync(SERVER_MAIN);
  } finally {
    rmdirSync(lock);
  }
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

const childEnv = (extra: Record<string, string> = {}): Record<string, string> => {
  const env: Record<string, string> = {};
  for (const k of ['PATH', 'HOME', 'TMPDIR']) if (process.env[k]) env[k] = process.env[k] as string;
  return { ...env, ...extra };
};

/** Runs `sigil-server ...args` to completion. */
export function runServer(args: string[], env: Record<string, string> = {}, timeoutMs = 60_000): Promise<RunResult> {
  ensureServerBuilt();
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, [SERVER_MAIN, ...args], { env: childEnv(env), cwd: REPO_ROOT });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolveRun({ code, stdout, stderr });
    });
  });
}

/** A started `sigil-server start` child. */
export interface ServerChild {
  child: ChildProcess;
  url: string;
  port: number;
  /** stderr so far (JSON lines). */
  stderr(): string;
  /** Resolves with the exit code once the process ended. */
  exited: Promise<number | null>;
}

/** Spawns `sigil-server start --data DIR` and waits for its "listening" log line. */
export function startServer(dataDir: string, env: Record<string, string> = {}, timeoutMs = 30_000): Promise<ServerChild> {
  ensureServerBuilt();
  const child = spawn(process.execPath, [SERVER_MAIN, 'start', '--data', dataDir], { env: childEnv(env), cwd: REPO_ROOT });
  let err = '';
  child.stderr.setEncoding('utf8');
  const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  return new Promise((resolveStart, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`server did not start: ${err}`));
    }, timeoutMs);
    child.stderr!.on('data', (d: string) => {
      err += d;
      const m = /"url":"(https:\/\/[^"]+)"/.exec(err);
      if (m) {
        clearTimeout(timer);
        const url = m[1];
        resolveStart({ child, url, port: Number(new URL(url).port), stderr: () => err, exited });
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before listening: ${err}`));
    });
  });
}
