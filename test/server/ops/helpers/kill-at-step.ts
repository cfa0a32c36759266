/**
 * Killing an ops command at a named point of its run: a child fixture (fixtures/*-kill-child.ts)
 * runs `sigil-server` in-process and prints `STEP <name>` at each point it is told to mark; the
 * parent SIGKILLs it as soon as the wanted one appears, as a power cut or kill -9 would.
 */
import { spawn } from 'node:child_process';

export interface Killed {
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the child fixture `script` with `args` until it prints `STEP <step>`, then SIGKILLs it
 * (after 120 s at the latest).
 */
export function killAtStep(script: string, step: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Killed> {
  // The TypeScript loader tap runs this test with (and only it: no coverage or mock hooks).
  const loader = process.execArgv.filter((a) => a.includes('@tapjs/typescript') || a === '--enable-source-maps');
  const child = spawn(process.execPath, [...loader, script, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let stdout = '';
  let stderr = '';
  const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    if (stdout.includes(`STEP ${step}\n`)) child.kill('SIGKILL');
  });
  return new Promise((resolve) => {
    child.on('close', (_code, signal) => {
      clearTimeout(timer);
      resolve({ signal, stdout, stderr });
    });
  });
}
