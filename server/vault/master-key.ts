/**
 * The master key MK: the root of the vault's key hierarchy (ARCHITECTURE.md), 32 bytes, never
 * stored. It comes either from the operator's passphrase through argon2id (RFC 9106) or from a
 * key file of 32 random bytes (base64) that the administrator keeps on removable media.
 *
 * `vault-key.json` beside the data holds what is needed to re-derive and recognise MK — the
 * argon2id salt and parameters, and a key-check value (an AES-GCM seal of nothing under MK, whose
 * tag tells a wrong passphrase from a right one) — but never MK itself.
 */
import { existsSync, lstatSync, readFileSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { webcrypto } from 'node:crypto';
import argon2 from 'argon2';
import { z } from 'zod';
import { open, randomBytes, seal, type RandomBytes } from './aead.js';
import {
  MasterKeyArgumentError,
  MasterKeyConfigError,
  MasterKeyExistsError,
  MasterKeyFileError,
  MasterKeyMissingError,
  MasterKeyWrongError,
  VaultDecryptError,
} from './errors.js';
import { KEK_USAGES, createWrappedKey, rewrapKey, unwrapDataKey } from './key-wrap.js';
import { linkDurable, syncDir, tempPathOf, writeFileDurable, writeSynced } from './durable-file.js';
import type { CryptoKey } from './crypto-types.js';

/** Name of the master-key description file in the data directory. */
export const VAULT_KEY_FILE = 'vault-key.json';
/** Where a master-key rotation keeps the new `vault-key.json` until every key is re-wrapped (vault.ts). */
export const VAULT_KEY_NEXT_FILE = 'vault-key.next.json';
/**
 * The `vault-key.json` a committed rotation replaced, kept until the rotation's clean-up is done
 * (rotation-record.ts): the proof of which secret was the old one.
 */
export const VAULT_KEY_PREV_FILE = 'vault-key.prev.json';

/** argon2id parameters; the defaults are the floor (RFC 9106 §4 second recommended option, with m=64 MiB). */
export interface Argon2Params {
  /** Memory in KiB. Default and minimum 65536 (64 MiB). */
  memoryKiB: number;
  /** Passes. Default and minimum 3. */
  iterations: number;
  /** Lanes. Default and minimum 1. */
  parallelism: number;
}

/** The floor below which `vault-key.json` is refused. */
export const ARGON2_MIN: Readonly<Argon2Params> = { memoryKiB: 65536, iterations: 3, parallelism: 1 };

/** Shortest passphrase accepted when creating a master key. */
export const MIN_PASSPHRASE_LENGTH = 12;

const KCV_AAD = 'sigil-master-key-check-v1';
const b64 = z.string().regex(/^[A-Za-z0-9+/]+={0,2}$/);

const VaultKeySchema = z.discriminatedUnion('kind', [
  z.object({
    version: z.literal(1),
    kind: z.literal('passphrase'),
    kdf: z.object({
      alg: z.literal('argon2id'),
      salt: b64,
      memoryKiB: z.number().int().min(ARGON2_MIN.memoryKiB).max(4 * 1024 * 1024),
      iterations: z.number().int().min(ARGON2_MIN.iterations).max(100),
      parallelism: z.number().int().min(ARGON2_MIN.parallelism).max(64),
    }),
    check: b64,
    createdAt: z.string(),
  }),
  z.object({ version: z.literal(1), kind: z.literal('keyfile'), check: b64, createdAt: z.string() }),
]);
/** The content of `vault-key.json`. */
export type VaultKeyJson = z.infer<typeof VaultKeySchema>;

/** Exactly one of the two unlock secrets. */
export type MasterKeySecret = { passphrase: string; keyFilePath?: undefined } | { keyFilePath: string; passphrase?: undefined };

/** Options of {@link prepareMasterKey}: the secret and how to derive from it. */
export type PrepareMasterKeyOptions = MasterKeySecret & {
  /** argon2id parameters (passphrase mode); default {@link ARGON2_MIN}. */
  argon2?: Partial<Argon2Params>;
  /** Randomness (salt, key file, IVs); default CSPRNG. */
  random?: RandomBytes;
  /** Clock; default `new Date()`. */
  now?: () => Date;
};

/** Options of {@link createMasterKey}. */
export type CreateMasterKeyOptions = PrepareMasterKeyOptions & {
  /** Data directory where `vault-key.json` is written. */
  dir: string;
};

/** Options of {@link unlockMasterKey}. */
export type UnlockMasterKeyOptions = MasterKeySecret & { dir: string };

/**
 * The unlocked master key: a non-extractable AES-256-GCM CryptoKey. It wraps and unwraps other
 * keys and seals small secrets, always with an AAD that names the purpose and id.
 */
export class MasterKey {
  readonly #key: CryptoKey;
  readonly #random: RandomBytes;

  private constructor(key: CryptoKey, random: RandomBytes) {
    this.#key = key;
    this.#random = random;
  }

  /** Imports 32 raw bytes as a master key (used by derivation; tests may call it with fixed bytes). */
  static async fromBytes(raw: Uint8Array, random: RandomBytes = randomBytes): Promise<MasterKey> {
    if (raw.length !== 32) throw new MasterKeyArgumentError(`master key: expected 32 bytes, got ${raw.length}`);
    const key = await webcrypto.subtle.importKey('raw', raw, { name: 'AES-GCM', length: 256 }, false, KEK_USAGES);
    return new MasterKey(key, random);
  }

  /** The CryptoKey itself, for key-wrap helpers. Non-extractable. */
  get cryptoKey(): CryptoKey {
    return this.#key;
  }

  /** A fresh data key and its wrapping under MK with `aad` (e.g. `ck:<convId>`, `key:<name>`). */
  wrapNewKey(aad: string): Promise<{ key: CryptoKey; wrapped: Uint8Array }> {
    return createWrappedKey(this.#key, aad, this.#random);
  }

  /** @throws VaultDecryptError if `wrapped` is not a key wrapped under this MK with this `aad`. */
  unwrapKey(wrapped: Uint8Array, aad: string): Promise<CryptoKey> {
    return unwrapDataKey(this.#key, wrapped, aad);
  }

  /** Re-wraps a key wrapped under this MK so that `next` unwraps it (rotation). */
  rewrapTo(next: MasterKey, wrapped: Uint8Array, aad: string): Promise<Uint8Array> {
    return rewrapKey(this.#key, next.#key, wrapped, aad, this.#random);
  }

  /** Seals bytes (a keyring secret) under MK. */
  seal(plaintext: Uint8Array, aad: string): Promise<Uint8Array> {
    return seal(this.#key, plaintext, aad, this.#random);
  }

  /** @throws VaultDecryptError on tampering, wrong MK or wrong AAD. */
  open(sealed: Uint8Array, aad: string): Promise<Uint8Array> {
    return open(this.#key, sealed, aad);
  }
}

function pickSecret(opts: MasterKeySecret): 'passphrase' | 'keyfile' {
  const hasP = typeof opts.passphrase === 'string';
  const hasF = typeof opts.keyFilePath === 'string';
  if (hasP === hasF) {
    throw new MasterKeyArgumentError('give exactly one of passphrase and keyFilePath');
  }
  return hasP ? 'passphrase' : 'keyfile';
}

async function deriveFromPassphrase(passphrase: string, salt: Uint8Array, p: Argon2Params): Promise<Uint8Array> {
  // argon2 runs on the libuv thread pool (native addon), not on the event loop.
  const out = await argon2.hash(passphrase, {
    type: argon2.argon2id,
    raw: true,
    hashLength: 32,
    salt: Buffer.from(salt),
    memoryCost: p.memoryKiB,
    timeCost: p.iterations,
    parallelism: p.parallelism,
  });
  return new Uint8Array(out);
}

function readKeyFile(path: string): Uint8Array {
  let text: string;
  try {
    const st = statSync(path);
    if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
      throw new MasterKeyFileError(
        `key file ${path}: expected mode 0600 (no group/other access), got ${(st.mode & 0o777).toString(8)}`,
      );
    }
    text = readFileSync(path, 'utf8').trim();
  } catch (err) {
    if (err instanceof MasterKeyFileError) throw err;
    throw new MasterKeyFileError(`key file ${path} cannot be read`, { cause: err });
  }
  const raw = /^[A-Za-z0-9+/]{43}=$/.test(text) ? new Uint8Array(Buffer.from(text, 'base64')) : undefined;
  if (!raw || raw.length !== 32) {
    throw new MasterKeyFileError(`key file ${path}: expected 32 bytes in base64 (44 characters), got ${text.length} characters`);
  }
  return raw;
}

/**
 * Creates the master key for a new vault and writes `vault-key.json` (mode 0600) in `dir`.
 * With `keyFilePath`, a new key file of 32 random bytes (base64, mode 0600) is written there.
 *
 * @throws MasterKeyExistsError if `vault-key.json` or the key file already exists;
 *   MasterKeyArgumentError for neither/both secrets or a passphrase under 12 characters.
 */
export async function createMasterKey(opts: CreateMasterKeyOptions): Promise<MasterKey> {
  const jsonPath = join(opts.dir, VAULT_KEY_FILE);
  if (existsSync(jsonPath)) throw new MasterKeyExistsError(`${jsonPath} exists; refusing to replace the vault's master key`);
  const { masterKey, config } = await prepareMasterKey(opts);
  if (opts.keyFilePath !== undefined) publishKeyFile(opts.keyFilePath);
  writeVaultKeyJson(jsonPath, config);
  return masterKey;
}

/**
 * Derives a new master key and the `vault-key.json` content describing it, without writing
 * that file (rotation writes it elsewhere first). In key-file mode the new key is written, and
 * fsynced, under the key file's temp name (`PATH.tmp`); {@link publishKeyFile} links it to PATH
 * once the description is durable — so a cut before that leaves no file at PATH to refuse a
 * second attempt, and a cut after it leaves the key where a resumed rotation finds it.
 * @throws MasterKeyExistsError if the key file exists; MasterKeyFileError if it cannot be written.
 */
export async function prepareMasterKey(
  opts: PrepareMasterKeyOptions,
): Promise<{ masterKey: MasterKey; config: VaultKeyJson }> {
  const kind = pickSecret(opts);
  const random = opts.random ?? randomBytes;
  const now = opts.now ?? (() => new Date());
  let raw: Uint8Array;
  let kdf: Extract<VaultKeyJson, { kind: 'passphrase' }>['kdf'] | undefined;
  if (kind === 'passphrase') {
    const passphrase = opts.passphrase as string;
    if (passphrase.length < MIN_PASSPHRASE_LENGTH) {
      throw new MasterKeyArgumentError(`passphrase: expected at least ${MIN_PASSPHRASE_LENGTH} characters, got ${passphrase.length}`);
    }
    const params: Argon2Params = { ...ARGON2_MIN, ...opts.argon2 };
    if (params.memoryKiB < ARGON2_MIN.memoryKiB || params.iterations < ARGON2_MIN.iterations || params.parallelism < 1) {
      throw new MasterKeyArgumentError(`argon2id parameters below the floor m=64 MiB, t=3, p=1`);
    }
    const salt = random(16);
    raw = await deriveFromPassphrase(passphrase, salt, params);
    kdf = { alg: 'argon2id', salt: Buffer.from(salt).toString('base64'), ...params };
  } else {
    raw = random(32);
    writePendingKeyFile(opts.keyFilePath as string, raw);
  }
  const masterKey = await MasterKey.fromBytes(raw, random);
  raw.fill(0);
  const check = Buffer.from(await masterKey.seal(new Uint8Array(0), KCV_AAD)).toString('base64');
  const config: VaultKeyJson =
    kdf !== undefined
      ? { version: 1, kind: 'passphrase', kdf, check, createdAt: now().toISOString() }
      : { version: 1, kind: 'keyfile', check, createdAt: now().toISOString() };
  return { masterKey, config };
}

/** The new key in base64 at `PATH.tmp` (0600), file and directory fsynced. Never touches PATH itself. */
function writePendingKeyFile(path: string, raw: Uint8Array): void {
  if (lstatSync(path, { throwIfNoEntry: false }) !== undefined) {
    throw new MasterKeyExistsError(`key file ${path} exists; refusing to overwrite it`);
  }
  try {
    writeSynced(tempPathOf(path), `${Buffer.from(raw).toString('base64')}\n`, 0o600);
    syncDir(dirname(path));
  } catch (err) {
    rmSync(tempPathOf(path), { force: true });
    throw new MasterKeyFileError(`key file ${path} cannot be written`, { cause: err });
  }
}

/**
 * Puts the key written by {@link prepareMasterKey} at `path` (link from `PATH.tmp`, which is then
 * removed; the directory fsynced). Idempotent for a resumed rotation: when `path` is there
 * already, only a leftover `PATH.tmp` is removed.
 * @throws MasterKeyFileError if neither `path` nor `PATH.tmp` exists, or the link fails.
 */
export function publishKeyFile(path: string): void {
  const tmp = tempPathOf(path);
  try {
    if (existsSync(path)) {
      if (existsSync(tmp)) {
        rmSync(tmp, { force: true });
        syncDir(dirname(path));
      }
      return;
    }
    linkDurable(tmp, path);
  } catch (err) {
    throw new MasterKeyFileError(`key file ${path} cannot be put in place from ${tmp}`, { cause: err });
  }
}

/**
 * Writes a `vault-key.json`-format file durably (temp file, fsync, rename, fsync of the
 * directory): a crash never leaves half a file, and once this returns a power cut cannot take
 * the file back while keys already sit under the master key it describes.
 */
export function writeVaultKeyJson(path: string, config: VaultKeyJson): void {
  writeFileDurable(path, `${JSON.stringify(config, null, 2)}\n`, 0o600);
}

/** Reads and validates `vault-key.json`. @throws MasterKeyMissingError, MasterKeyConfigError */
export function readVaultKeyJson(dir: string, file: string = VAULT_KEY_FILE): VaultKeyJson {
  const path = join(dir, file);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new MasterKeyMissingError(`${path} not found: this directory holds no initialised vault`, { cause: err });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new MasterKeyConfigError(`${path} is not JSON`, { cause: err });
  }
  const r = VaultKeySchema.safeParse(parsed);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new MasterKeyConfigError(`${path}: ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`, {
      cause: r.error,
    });
  }
  return r.data;
}

/**
 * Re-derives MK from the passphrase or key file and checks it against `vault-key.json`.
 *
 * @throws MasterKeyWrongError if the secret does not match (saying so when it is the new key of an
 *   unfinished rotation or the key a committed rotation replaced, see `rotationExplains`);
 *   MasterKeyMissingError, MasterKeyConfigError, MasterKeyFileError, MasterKeyArgumentError as named.
 */
export async function unlockMasterKey(opts: UnlockMasterKeyOptions): Promise<MasterKey> {
  const cfg = readVaultKeyJson(opts.dir);
  try {
    return await unlockWithConfig(cfg, opts);
  } catch (err) {
    if (!(err instanceof MasterKeyWrongError || err instanceof MasterKeyArgumentError)) throw err;
    throw (await rotationExplains(opts, err)) ?? err;
  }
}

/**
 * A secret refused by `vault-key.json` that a master-key rotation explains: the new key of a
 * rotation not yet committed (it opens `vault-key.next.json`), or the key a committed rotation
 * replaced while its clean-up is unfinished (it opens `vault-key.prev.json`). A bare "does not
 * match" would send the operator looking for another key when what is needed is the rotate
 * command run again. Costs one more derivation per such file, on the refusal path only.
 */
async function rotationExplains(opts: UnlockMasterKeyOptions, refused: Error): Promise<MasterKeyWrongError | undefined> {
  const kind = opts.passphrase !== undefined ? 'passphrase' : 'key file';
  const again = 'run the same "sigil-server rotate-master-key" command again';
  const explained: [string, string][] = [
    [
      VAULT_KEY_NEXT_FILE,
      `the ${kind} is the new master key of a rotation that has not finished (${VAULT_KEY_NEXT_FILE} exists), so the vault ` +
        `does not open with it yet: ${again} to finish it (until then the old key opens the vault and start refuses: ROTATION_PENDING)`,
    ],
    [
      VAULT_KEY_PREV_FILE,
      `the ${kind} is the master key this vault had before its rotation to a new key, which is committed (only its clean-up ` +
        `was interrupted): start with the new key; ${again} to finish the clean-up (the check of the old key, --shred-old-key-file)`,
    ],
  ];
  for (const [file, message] of explained) {
    if (!existsSync(join(opts.dir, file))) continue;
    let cfg: VaultKeyJson;
    try {
      cfg = readVaultKeyJson(opts.dir, file);
    } catch {
      continue; // unreadable: it explains nothing
    }
    if (await opensWith(cfg, opts)) return new MasterKeyWrongError(message, { cause: refused });
  }
  return undefined;
}

/**
 * Does `opts` open the key `cfg` describes? False for any failure (wrong secret, other kind,
 * unreadable key file): a yes/no probe, where {@link unlockWithConfig} says why.
 */
export function opensWith(cfg: VaultKeyJson, opts: MasterKeySecret): Promise<boolean> {
  return unlockWithConfig(cfg, opts).then(
    () => true,
    () => false,
  );
}

/** Re-derives MK from a secret and checks it against a parsed `vault-key.json`. */
export async function unlockWithConfig(cfg: VaultKeyJson, opts: MasterKeySecret): Promise<MasterKey> {
  const kind = pickSecret(opts);
  if (cfg.kind !== kind) {
    throw new MasterKeyArgumentError(`this vault is unlocked with a ${cfg.kind}, not a ${kind}`);
  }
  const raw =
    cfg.kind === 'passphrase'
      ? await deriveFromPassphrase(opts.passphrase as string, new Uint8Array(Buffer.from(cfg.kdf.salt, 'base64')), cfg.kdf)
      : readKeyFile(opts.keyFilePath as string);
  const mk = await MasterKey.fromBytes(raw);
  raw.fill(0);
  try {
    await mk.open(new Uint8Array(Buffer.from(cfg.check, 'base64')), KCV_AAD);
  } catch (err) {
    if (err instanceof VaultDecryptError) {
      throw new MasterKeyWrongError(`the ${kind} does not match this vault's key-check value`, { cause: err });
    }
    throw err;
  }
  return mk;
}
