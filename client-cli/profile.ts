/**
 * The workstation profile: one folder holding the server URL, the pinned CA, the user's encrypted
 * private key and certificate, and the current session. Paths are built with node:path only, so
 * the same code runs on Windows and Linux.
 *
 * Files: `config.json`, `ca.pem`, `key.p8.pem` (PKCS#8 EncryptedPrivateKeyInfo, RFC 5958 §3),
 * `cert.pem` (the user's certificate), `chain.pem` (issuing CA certificates sent with it),
 * `request.csr.pem` (the last CSR made by keygen), `session.json` (bearer token), `root-crl.pem`
 * (the newest root CRL accepted, kept against a rollback: messaging/kept-root-crl.ts), and
 * `audit/checkpoint.json` (the auditor's saved checkpoint).
 *
 * Like ssh and gpg, a profile is used only when nobody else can change it (POSIX): the folder must
 * be a real folder (not a symbolic link) owned by the user with no group/other write bit, and each
 * of its files that exists a regular file owned by the user, not group/other-writable. Otherwise a
 * folder someone else made beforehand (`/tmp/officer`, 0777) would let them swap `ca.pem` and
 * `config.json` and take the login password to their own server. Checked once per process, before
 * the first read or write.
 */
import { mkdir, readFile, rm, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { CliError, ProfileCorruptError, ProfileIncompleteError, ProfileMissingError } from './errors.js';
import { stageFile, unsafeReason, writeFileAtomic, type StagedFile } from './output-file.js';

/** Where the profile lives: `--profile DIR`, else `SIGIL_PROFILE`, else the OS's per-user config folder. */
export function resolveProfileDir(opts: {
  flag?: string;
  env: Readonly<Record<string, string | undefined>>;
  platform?: NodeJS.Platform;
  home?: string;
}): string {
  if (opts.flag) return resolve(opts.flag);
  if (opts.env.SIGIL_PROFILE) return resolve(opts.env.SIGIL_PROFILE);
  const platform = opts.platform ?? process.platform;
  const home = opts.home ?? homedir();
  if (platform === 'win32') {
    // %APPDATA% is the roaming per-user folder; fall back to its usual place under the home.
    return join(opts.env.APPDATA ?? join(home, 'AppData', 'Roaming'), 'sigil');
  }
  // XDG Base Directory: $XDG_CONFIG_HOME only counts when absolute.
  const xdg = opts.env.XDG_CONFIG_HOME;
  return join(xdg && xdg.startsWith('/') ? xdg : join(home, '.config'), 'sigil');
}

/** config.json (checked by `profile-schema.ts`, loaded only when a profile is read). */
export interface ProfileConfig {
  version: 1;
  /** Base URL of the appliance, e.g. https://10.0.0.5:8443 */
  server: string;
  /** The account this profile belongs to (set by keygen, cert import or login). */
  login?: string;
}

/** session.json: the bearer token of the current session. */
export interface Session {
  token: string;
  expiresAt: string;
  login: string;
  mustChangePassword: boolean;
}

/** File names inside the profile folder. */
export const PROFILE_FILES = {
  config: 'config.json',
  ca: 'ca.pem',
  key: 'key.p8.pem',
  cert: 'cert.pem',
  chain: 'chain.pem',
  csr: 'request.csr.pem',
  session: 'session.json',
  /** The newest root CRL accepted (messaging/kept-root-crl.ts): public, kept against a rollback. */
  rootCrl: 'root-crl.pem',
} as const;
export type ProfileFile = keyof typeof PROFILE_FILES;

/** Files that hold secrets or credentials: owner-only (0600; ignored on Windows, where ACLs of the user folder apply). */
const PRIVATE: ReadonlySet<ProfileFile> = new Set<ProfileFile>(['key', 'session']);

/**
 * The auditor's saved checkpoint, relative to the profile folder (audit/checkpoint.ts writes it).
 * Its subfolder is checked like the profile itself.
 */
export const SAVED_CHECKPOINT = join('audit', 'checkpoint.json');

/** The profile folder, or a file in it, could be changed by someone else: it is not used. */
export class ProfileUnsafeError extends CliError {
  constructor(message: string) {
    super('PROFILE_UNSAFE', message);
  }
}

/**
 * Throws ProfileUnsafeError unless the folder `dir` and each of its profile files that exists are
 * this user's alone. Returns false when the folder does not exist (nothing to check). On Windows
 * (no `process.getuid`) nothing is checked: the ACLs of the user's folder apply there.
 */
export async function checkProfileSafe(dir: string): Promise<boolean> {
  if (typeof process.getuid !== 'function') return true;
  const reason = await unsafeReason(dir, 'folder');
  if (reason === 'missing') return false;
  if (reason) {
    const fix = reason.startsWith('is writable')
      ? `run: chmod 700 ${dir}`
      : 'use a folder of your own under your home instead, e.g. --profile ~/.sigil/NAME (and remove this one)';
    throw new ProfileUnsafeError(`profile folder ${dir} ${reason}; someone else could replace its files, so it is not used: ${fix}`);
  }
  const files = Object.values(PROFILE_FILES).map((f) => join(dir, f));
  const auditDir = join(dir, dirname(SAVED_CHECKPOINT));
  const auditReason = await unsafeReason(auditDir, 'folder');
  if (auditReason && auditReason !== 'missing') {
    throw new ProfileUnsafeError(`profile folder ${auditDir} ${auditReason}; it is not used: ${auditReason.startsWith('is writable') ? `run: chmod 700 ${auditDir}` : 'remove it'}`);
  }
  if (auditReason !== 'missing') files.push(join(dir, SAVED_CHECKPOINT));
  for (const file of files) {
    const r = await unsafeReason(file, 'file');
    if (!r || r === 'missing') continue;
    const fix = r.startsWith('is writable') ? `run: chmod go-w ${file}` : 'remove it and write it again (sigil setup, sigil cert import, sigil login)';
    throw new ProfileUnsafeError(`profile file ${file} ${r}; it is not used: ${fix}`);
  }
  return true;
}

/** A profile folder. Reading never creates anything; writing creates the folder (0700). */
export class Profile {
  /** The once-per-process safety check of an existing folder (see {@link checkProfileSafe}). */
  private checked?: Promise<void>;

  constructor(readonly dir: string) {}

  path(file: ProfileFile): string {
    return join(this.dir, PROFILE_FILES[file]);
  }

  /**
   * Refuses a profile that someone else could change (ProfileUnsafeError); with `create`, makes
   * the folder (0700) first. A missing folder is checked again at the next call.
   */
  async ensureSafe(opts: { create?: boolean } = {}): Promise<void> {
    if (opts.create) await mkdir(this.dir, { recursive: true, mode: 0o700 });
    // Only a pass over an existing folder is kept. A refusal is never cached for another attempt
    // to get past: the next call checks again.
    this.checked ??= checkProfileSafe(this.dir).then(
      (exists) => {
        if (!exists) this.checked = undefined;
      },
      (err: unknown) => {
        this.checked = undefined;
        throw err;
      },
    );
    await this.checked;
  }

  async has(file: ProfileFile): Promise<boolean> {
    await this.ensureSafe();
    try {
      return (await stat(this.path(file))).isFile();
    } catch {
      return false;
    }
  }

  /** The config, or ProfileMissingError when setup never ran here. */
  async config(): Promise<ProfileConfig> {
    const text = await this.read('config');
    const { ProfileConfigSchema } = await import('./profile-schema.js');
    return this.parse('config', text, ProfileConfigSchema);
  }

  async writeConfig(config: ProfileConfig): Promise<void> {
    await this.write('config', await configText(config));
  }

  /** Stages config.json (see {@link Profile.stage}). */
  async stageConfig(config: ProfileConfig): Promise<StagedFile> {
    return this.stage('config', await configText(config));
  }

  /**
   * Contents of a file the command needs.
   * @throws ProfileMissingError without config.json (setup never ran here), ProfileIncompleteError
   *   without the file, ProfileCorruptError when it cannot be read (a folder at its name, no right
   *   to read it): one line that names the file, never the bare system error
   */
  async read(file: ProfileFile): Promise<string> {
    const text = await this.readOptional(file);
    if (text !== undefined) return text;
    if (file === 'config') throw new ProfileMissingError(this.dir);
    throw new ProfileIncompleteError(this.dir, file);
  }

  /** Contents of an optional file, or undefined when it does not exist. @throws ProfileCorruptError as {@link read} */
  async readOptional(file: ProfileFile): Promise<string | undefined> {
    await this.ensureSafe();
    try {
      return await readFile(this.path(file), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new ProfileCorruptError(this.path(file), { cause: err });
    }
  }

  /**
   * Writes through a new file and a rename (output-file.ts), so a crash never leaves half a key
   * behind and a key or session never keeps the looser mode of a file it replaces.
   */
  async write(file: ProfileFile, text: string): Promise<void> {
    await this.ensureSafe({ create: true });
    await writeFileAtomic(this.path(file), text, { mode: PRIVATE.has(file) ? 0o600 : 0o644 });
  }

  /**
   * Writes `text` for `file` beside it without replacing it yet: `commit()` renames it into place,
   * `discard()` drops it. For changes of several files that must all be written before any is
   * replaced (keygen).
   */
  async stage(file: ProfileFile, text: string): Promise<StagedFile> {
    await this.ensureSafe({ create: true });
    const staged = await stageFile(this.path(file), { mode: PRIVATE.has(file) ? 0o600 : 0o644 });
    try {
      await staged.write(text);
    } catch (err) {
      await staged.discard();
      throw err;
    }
    return staged;
  }

  async remove(file: ProfileFile): Promise<void> {
    await this.ensureSafe();
    await rm(this.path(file), { force: true });
  }

  /** The saved session, or undefined when there is none. */
  async session(): Promise<Session | undefined> {
    const text = await this.readOptional('session');
    if (text === undefined) return undefined;
    const { SessionSchema } = await import('./profile-schema.js');
    return this.parse('session', text, SessionSchema);
  }

  async writeSession(session: Session): Promise<void> {
    const { SessionSchema } = await import('./profile-schema.js');
    await this.write('session', JSON.stringify(SessionSchema.parse(session)) + '\n');
  }

  private parse<T>(file: ProfileFile, text: string, schema: { parse(v: unknown): T }): T {
    try {
      return schema.parse(JSON.parse(text));
    } catch (cause) {
      throw new ProfileCorruptError(this.path(file), { cause });
    }
  }
}

async function configText(config: ProfileConfig): Promise<string> {
  const { ProfileConfigSchema } = await import('./profile-schema.js');
  return JSON.stringify(ProfileConfigSchema.parse(config), null, 2) + '\n';
}
