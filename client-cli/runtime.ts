/**
 * What a command's `run()` gets: injected I/O (stdout, stderr, prompter, environment, clock) and
 * lazy access to the profile, the unlocked key and an HTTP client. Nothing is read or asked until
 * a command needs it, so `sigil setup` never asks for a passphrase and `--help` touches no file.
 */
import { KeyObject } from 'node:crypto';
import type { CryptoKey } from '../pki/index.js';
import { CredentialMissingError, NotLoggedInError } from './errors.js';
import { HttpClient } from './http.js';
import { createOutput, type Output, type TextSink } from './output.js';
import { Profile, resolveProfileDir, type ProfileConfig, type Session } from './profile.js';
import type { Prompter } from './prompt.js';

/** The process's outside world, injected so tests can run commands in-process too. */
export interface Io {
  stdout: TextSink;
  stderr: TextSink;
  env: Readonly<Record<string, string | undefined>>;
  prompter: Prompter;
  now: () => Date;
  /** True when stderr is a terminal (progress bars only then). */
  stderrIsTTY: boolean;
}

/** Flags every command accepts (defined on the root command). */
export interface GlobalOptions {
  profile?: string;
  json?: boolean;
}

/** The unlocked credentials of the profile. */
export interface Credentials {
  login: string | undefined;
  /** The unlocked key as plain PKCS#8 PEM, in memory only, for the TLS handshake. */
  tlsKeyPem: string;
  /** The signing key. */
  key: CryptoKey;
  /** The user's certificate PEM. */
  certPem: string;
  /** Issuing CA certificates sent after the leaf in the TLS handshake. */
  chainPem: string;
}

export const ENV = {
  password: 'SIGIL_PASSWORD',
  newPassword: 'SIGIL_NEW_PASSWORD',
  keyPassphrase: 'SIGIL_KEY_PASSPHRASE',
  newKeyPassphrase: 'SIGIL_NEW_KEY_PASSPHRASE',
  profile: 'SIGIL_PROFILE',
  debug: 'SIGIL_DEBUG',
} as const;

export class Runtime {
  readonly out: Output;
  readonly profile: Profile;
  private credentials?: Promise<Credentials>;

  constructor(
    readonly io: Io,
    readonly global: GlobalOptions,
  ) {
    this.out = createOutput(io.stdout, io.stderr, { json: global.json });
    this.profile = new Profile(resolveProfileDir({ flag: global.profile, env: io.env }));
  }

  get json(): boolean {
    return Boolean(this.global.json);
  }

  config(): Promise<ProfileConfig> {
    return this.profile.config();
  }

  /**
   * The profile's key, unlocked with SIGIL_KEY_PASSPHRASE or a prompt, and its certificate.
   * Asked once per process.
   * @throws CredentialMissingError, KeyUnlockError (wrong passphrase), PromptUnavailableError.
   */
  unlock(opts: { needCertificate?: boolean } = {}): Promise<Credentials> {
    this.credentials ??= this.loadCredentials();
    return this.credentials.then(async (c) => {
      if (opts.needCertificate !== false && c.certPem === '') {
        throw new CredentialMissingError('certificate', 'ask the security officer to issue one, then run: sigil cert import FILE');
      }
      return c;
    });
  }

  private async loadCredentials(): Promise<Credentials> {
    const config = await this.config();
    const keyPem = await this.profile.readOptional('key');
    if (keyPem === undefined) {
      throw new CredentialMissingError('key', 'run: sigil keygen --login LOGIN, or sigil cert import FILE.p12');
    }
    const { unlockKey, isEncryptedKeyPem } = await import('./credentials.js');
    const passphrase = isEncryptedKeyPem(keyPem) ? await this.io.prompter.secret('Key passphrase', ENV.keyPassphrase) : undefined;
    const key = await unlockKey(keyPem, passphrase);
    return {
      login: config.login,
      // Decrypted once here (PBKDF2 with 600k iterations is slow by design); TLS gets the
      // plain PKCS#8 from memory instead of decrypting the file a second time.
      tlsKeyPem: KeyObject.from(key).export({ type: 'pkcs8', format: 'pem' }).toString(),
      key,
      certPem: (await this.profile.readOptional('cert')) ?? '',
      chainPem: (await this.profile.readOptional('chain')) ?? '',
    };
  }

  /**
   * An HTTPS client for the profile's server, presenting the profile's certificate.
   * With `session: true` it carries the saved bearer token (NotLoggedInError when there is none
   * or it has expired by the local clock). The server URL and the pinned CA come from the
   * profile only after `Profile` has checked that nobody else can change it (ProfileUnsafeError).
   */
  async client(opts: { session: boolean }): Promise<HttpClient> {
    const config = await this.config();
    let session: Session | undefined;
    if (opts.session) session = await this.requireSession();
    const creds = await this.unlock();
    return new HttpClient({
      baseUrl: config.server,
      caPem: await this.profile.read('ca'),
      certPem: creds.certPem.trimEnd() + '\n' + creds.chainPem,
      keyPem: creds.tlsKeyPem,
      token: session?.token,
    });
  }

  async requireSession(): Promise<Session> {
    const session = await this.profile.session();
    if (!session) throw new NotLoggedInError();
    if (Date.parse(session.expiresAt) <= this.io.now().getTime()) throw new NotLoggedInError('the session has expired');
    return session;
  }
}
