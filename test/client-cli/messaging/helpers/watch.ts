/**
 * `sigil watch` as a child process for the watch tests: what it printed so far on each stream, and
 * its exit code once it ends. It is killed after `killAfterMs`, so a watch that never ends fails
 * its test instead of hanging it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { CLI_MAIN } from '../../../helpers/cli.js';

export interface WatchProcess {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** The exit code; null when it was killed. */
  exit: Promise<number | null>;
}

export function spawnWatch(profile: string, args: string[], killAfterMs = 50_000): WatchProcess {
  const child = spawn(process.execPath, [CLI_MAIN, '--profile', profile, 'watch', ...args], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exit = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  const killer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
  void exit.then(() => clearTimeout(killer));
  return { child, stdout: () => out, stderr: () => err, exit };
}
