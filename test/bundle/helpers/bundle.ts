/**
 * Test helpers for bundle/: running the scripts, administrator keys, an npm tripwire, hand-made
 * signed bundles.
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const MAKE = join(REPO, 'bundle/make-bundle.sh');
export const INSTALL = join(REPO, 'bundle/install.sh');

export interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a program to completion; never rejects on a non-zero exit. */
export function run(file: string, args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<Ran> {
  return new Promise((done, reject) => {
    const child = spawn(file, args, { env: options.env ?? process.env, cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => done({ code, stdout, stderr }));
  });
}

/** Runs openssl; rejects on failure. */
export const openssl = (args: string[]) =>
  run('openssl', args).then((r) => {
    if (r.code !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
    return r;
  });

/** An environment in which any use of npm is both impossible and recorded. */
export function offlineEnv(dir: string): { env: NodeJS.ProcessEnv; tripwire: string } {
  const bin = join(dir, 'no-npm');
  const tripwire = join(dir, 'npm-was-called');
  mkdirSync(bin, { recursive: true });
  for (const name of ['npm', 'npx']) {
    writeFileSync(join(bin, name), `#!/bin/sh\necho "$0 $*" >> '${tripwire}'\nexit 1\n`);
    chmodSync(join(bin, name), 0o755);
  }
  return {
    tripwire,
    env: {
      ...process.env,
      PATH: `${bin}${delimiter}${process.env.PATH}`,
      npm_config_offline: 'true',
      npm_config_registry: 'http://127.0.0.1:9',
      SIGIL_MASTER_PASSPHRASE: 'correct horse battery staple',
    },
  };
}

/** An administrator's EC P-384 key, its public key and a self-signed certificate. */
export async function adminKeys(dir: string, name: string): Promise<{ key: string; pub: string; cert: string }> {
  const key = join(dir, `${name}.key`);
  const pub = join(dir, `${name}.pub`);
  const cert = join(dir, `${name}.crt`);
  await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384', '-out', key]);
  await openssl(['pkey', '-in', key, '-pubout', '-out', pub]);
  await openssl(['req', '-new', '-x509', '-key', key, '-subj', `/CN=${name}`, '-days', '30', '-out', cert]);
  return { key, pub, cert };
}

/**
 * A small bundle made by hand and signed with the administrator's key, to reach the checks that
 * come after the signature: what the archive holds and what it unpacks to. `prepare` changes the
 * honest payload before it is hashed (another release); `header` goes first in the manifest
 * (e.g. "# sigil-bundle version 0.2.0\n# sequence 200\n"); `name` is the bundle's file name.
 */
export async function craft(
  dir: string,
  key: string,
  build: (payloadDir: string) => Promise<void>,
  options: { tarArgs?: string[]; editManifest?: (m: string) => string; prepare?: (payloadDir: string) => void; header?: string; name?: string } = {},
): Promise<string> {
  const work = join(dir, options.name ? `craft-${options.name}` : 'craft');
  mkdirSync(join(work, 'payload/dist'), { recursive: true });
  writeFileSync(join(work, 'payload/dist/a.js'), 'export const a = 1;\n');
  options.prepare?.(join(work, 'payload'));
  writeFileSync(join(work, 'install.sh'), readFileSync(INSTALL));
  // Hash what the honest payload holds; `build` then adds what the attacker wants.
  const files = (await run('sh', ['-c', 'cd "$1" && find payload -type f | LC_ALL=C sort | xargs sha256sum', 'sh', work])).stdout;
  await build(join(work, 'payload'));
  const tarred = await run('tar', ['-czf', join(work, 'payload.tar.gz'), '-C', work, ...(options.tarArgs ?? []), 'payload']);
  if (tarred.code !== 0) throw new Error(tarred.stderr);
  const top = (await run('sh', ['-c', 'cd "$1" && sha256sum payload.tar.gz install.sh', 'sh', work])).stdout;
  writeFileSync(join(work, 'MANIFEST.sha256'), (options.editManifest ?? ((m: string) => m))((options.header ?? '') + top + files));
  await openssl(['dgst', '-sha384', '-sign', key, '-out', join(work, 'MANIFEST.sig'), join(work, 'MANIFEST.sha256')]);
  const out = join(dir, options.name ? `${options.name}.tar` : 'crafted.tar');
  await run('tar', ['-cf', out, '-C', work, 'install.sh', 'MANIFEST.sha256', 'MANIFEST.sig', 'payload.tar.gz']);
  return out;
}


/** Unpacks a bundle, lets `change` alter its members, and packs it again (without re-signing). */
export async function repack(bundle: string, dir: string, change: (work: string) => void): Promise<string> {
  const work = join(dir, 'repack');
  mkdirSync(work, { recursive: true });
  await run('tar', ['-xf', bundle, '-C', work]);
  change(work);
  const out = join(dir, 'repacked.tar');
  await run('tar', ['-cf', out, '-C', work, 'install.sh', 'MANIFEST.sha256', 'MANIFEST.sig', 'payload.tar.gz']);
  return out;
}
