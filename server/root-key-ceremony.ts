/**
 * The start both root key ceremonies share (sign-root-crl.ts, renew-issuing.ts): their failure
 * modes (RootCrlError and which codes are failure or usage), the data directory and root
 * certificate they work on, the offline root key opened and held to that certificate, and the
 * `--root-key` file and the passphrase read the way both commands read them (never from argv).
 */
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { BadPassphraseError, Certificate, exportPublicKeySpki, importPrivateKeyPem, publicKeyFingerprint, type CryptoKey } from '../pki/index.js';
import { PATHS } from './appliance.js';
import { ApplianceMissingError } from './errors.js';

/**
 * Failure modes of the root key ceremonies (sign-root-crl.ts and renew-issuing.ts), each with a stable
 * code; messages name files, never secrets.
 */
export class RootCrlError extends Error {
  constructor(
    readonly code: 'ROOT_KEY_MISMATCH' | 'ROOT_KEY_PASSPHRASE_WRONG' | 'ROOT_KEY_UNREADABLE' | 'ROOT_CRL_INVALID' | 'ROOT_CRL_ARGUMENT' | 'ISSUING_CA_REVOKED',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'RootCrlError';
  }
}

/** Codes whose message is the command's one log line (main.ts); ROOT_CRL_ARGUMENT is usage (exit 2). */
export const ROOT_CRL_SAID_CODES = ['ROOT_KEY_MISMATCH', 'ROOT_KEY_PASSPHRASE_WRONG', 'ROOT_KEY_UNREADABLE', 'ROOT_CRL_INVALID', 'ISSUING_CA_REVOKED'] as const;
export const ROOT_CRL_USAGE_CODES = ['ROOT_CRL_ARGUMENT'] as const;

/** What a root key ceremony starts from: the appliance's data directory, its root, and the root key opened. */
export interface Ceremony {
  dataDir: string;
  now: Date;
  root: Certificate;
  key: CryptoKey;
  /** SHA-256 of the root key's SPKI, for the audit entry. */
  fingerprint: string;
}

/**
 * The start of both root key ceremonies (sign-root-crl.ts and renew-issuing.ts): an initialised data
 * directory, its root certificate, and the root key that is that certificate's.
 * @throws ApplianceMissingError, RootCrlError (see {@link openRootKey})
 */
export async function openCeremony(opts: { dataDir: string; rootKeyPem: string; passphrase: string; now?: () => Date }): Promise<Ceremony> {
  const dataDir = resolve(opts.dataDir);
  const now = (opts.now ?? (() => new Date()))();
  if (!existsSync(join(dataDir, PATHS.meta))) throw new ApplianceMissingError(dataDir);
  const root = Certificate.fromPem(await readFile(join(dataDir, PATHS.rootCert), 'utf8'));
  return { dataDir, now, root, ...(await openRootKey(root, opts.rootKeyPem, opts.passphrase)) };
}

/**
 * The root CA's private key from its encrypted PEM, held to the root certificate; with the SHA-256
 * of its SPKI for the audit entry.
 * @throws RootCrlError ROOT_KEY_PASSPHRASE_WRONG, ROOT_KEY_UNREADABLE, ROOT_KEY_MISMATCH (nothing signed)
 */
export async function openRootKey(root: Certificate, pem: string, passphrase: string): Promise<{ key: CryptoKey; fingerprint: string }> {
  let key: CryptoKey;
  try {
    key = await importPrivateKeyPem(pem, passphrase);
  } catch (err) {
    if (err instanceof BadPassphraseError) {
      throw new RootCrlError('ROOT_KEY_PASSPHRASE_WRONG', 'the passphrase does not open the root key: nothing was signed', { cause: err });
    }
    throw new RootCrlError('ROOT_KEY_UNREADABLE', `the root key file holds no readable private key: ${(err as Error).message}`, { cause: err });
  }
  if (!Buffer.from(root.publicKeySpki).equals(Buffer.from(await exportPublicKeySpki(key)))) {
    throw new RootCrlError('ROOT_KEY_MISMATCH', `the key is not the root CA's (${root.subjectString}, ${PATHS.rootCert}): nothing was signed`);
  }
  return { key, fingerprint: await publicKeyFingerprint(key) };
}

/** `--root-key FILE`'s text; an unreadable file is usage (ROOT_CRL_ARGUMENT). */
export function readRootKeyFile(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new RootCrlError('ROOT_CRL_ARGUMENT', `--root-key: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { cause: err });
  }
}

/** Reads a secret: the first line of `file`, else the terminal without echo, else the first line of stdin. */
export async function readPassphrase(
  file: string | undefined,
  input: NodeJS.ReadStream = process.stdin,
  output: NodeJS.WritableStream = process.stderr,
): Promise<string> {
  if (file !== undefined) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new RootCrlError('ROOT_CRL_ARGUMENT', `--passphrase-file: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { cause: err });
    }
    return firstLine(text);
  }
  if (input.isTTY) {
    return new Promise((resolvePass, reject) => {
      let muted = false;
      const echo = new Writable({
        write(chunk, _enc, done) {
          if (!muted) output.write(chunk);
          done();
        },
      });
      const rl = createInterface({ input, output: echo, terminal: true });
      let answered = false;
      rl.on('close', () => {
        if (!answered) reject(new RootCrlError('ROOT_CRL_ARGUMENT', 'no passphrase was given'));
      });
      rl.question('root key passphrase: ', (answer) => {
        answered = true;
        output.write('\n');
        rl.close();
        resolvePass(answer);
      });
      muted = true;
    });
  }
  const chunks: Buffer[] = [];
  for await (const chunk of input) chunks.push(Buffer.from(chunk as Uint8Array));
  const text = Buffer.concat(chunks).toString('utf8');
  if (text === '') throw new RootCrlError('ROOT_CRL_ARGUMENT', 'no passphrase: give --passphrase-file FILE, type it on a terminal, or pipe it on stdin');
  return firstLine(text);
}

function firstLine(text: string): string {
  return text.split(/\r?\n/, 1)[0] ?? '';
}
