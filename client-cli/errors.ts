/**
 * Failure modes of the `sigil` CLI. One class per mode, each with a stable string `code` that
 * `exit-codes.ts` maps to a process exit code, and the original `cause` kept for `SIGIL_DEBUG=1`.
 * Server answers keep the server's own code (`ServerError.code`), so `AUTH_FAILED` from the
 * appliance and a local failure are mapped by the same table.
 */

/** Base class: every error the CLI raises on purpose. */
export class CliError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** Flags or arguments that cannot work together (commander reports the simple cases itself). */
export class UsageError extends CliError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('USAGE', message, options);
  }
}

/** A prompt was needed but there is no terminal and no environment variable to answer it. */
export class PromptUnavailableError extends CliError {
  constructor(readonly label: string, readonly envVar: string | undefined) {
    super(
      'PROMPT_UNAVAILABLE',
      `${label} is needed but stdin is not a terminal` +
        (envVar ? `; set ${envVar} for scripts` : ''),
    );
  }
}

/** Two entries of a new password/passphrase did not match, or it was empty. */
export class PasswordMismatchError extends CliError {
  constructor(message = 'the two entries do not match') {
    super('PASSWORD_MISMATCH', message);
  }
}

/** No profile at the resolved location (setup was never run there). */
export class ProfileMissingError extends CliError {
  constructor(dir: string) {
    super('PROFILE_MISSING', `no profile in ${dir}; run: sigil setup --server URL --ca FILE`);
  }
}

/** Each profile file that a command may need, and the command that puts it there. */
const PROFILE_FILE_FIX: Readonly<Record<string, readonly [string, string]>> = {
  ca: ['ca.pem (the pinned CA)', 'sigil setup --server URL --ca FILE --force'],
  key: ['key.p8.pem (your key)', 'sigil keygen, or sigil cert import FILE.p12'],
  cert: ['cert.pem (your certificate)', 'sigil cert import FILE'],
  chain: ['chain.pem (your certificate\'s issuing CA)', 'sigil cert import FILE'],
  csr: ['request.csr.pem', 'sigil keygen'],
  session: ['session.json (no session)', 'sigil login'],
};

/** A profile that exists (config.json is there) lacks a file the command needs. */
export class ProfileIncompleteError extends CliError {
  constructor(dir: string, file: string) {
    const [what, fix] = PROFILE_FILE_FIX[file] ?? [file, 'sigil setup --server URL --ca FILE --force'];
    super('PROFILE_INCOMPLETE', `the profile ${dir} has no ${what}; run: ${fix}`);
  }
}

/** `setup` would overwrite an existing profile without `--force`. */
export class ProfileExistsError extends CliError {
  constructor(dir: string) {
    super('PROFILE_EXISTS', `a profile already exists in ${dir}; add --force to replace its server and CA`);
  }
}

/** A profile file exists but cannot be read as what it should be. */
export class ProfileCorruptError extends CliError {
  constructor(file: string, options?: { cause?: unknown }) {
    super('PROFILE_CORRUPT', `profile file ${file} is unreadable or malformed`, options);
  }
}

/** A key already exists and `--force` was not given (a key is never silently replaced). */
export class KeyExistsError extends CliError {
  constructor(file: string) {
    super('KEY_EXISTS', `a private key already exists at ${file}; add --force to replace it`);
  }
}

/** The profile holds no private key, or no certificate, where one is required. */
export class CredentialMissingError extends CliError {
  constructor(what: 'key' | 'certificate', hint: string) {
    super(what === 'key' ? 'KEY_MISSING' : 'CERT_MISSING', `no ${what} in the profile; ${hint}`);
  }
}

/** The private key could not be decrypted with the passphrase given. */
export class KeyUnlockError extends CliError {
  constructor(options?: { cause?: unknown }) {
    super('KEY_PASSPHRASE_WRONG', 'the private key could not be unlocked: wrong passphrase or damaged file', options);
  }
}

/** A new key passphrase breaks the policy (key-passphrase.ts); `rule` says which part. */
export class KeyPassphraseWeakError extends CliError {
  constructor(rule: string) {
    super('KEY_PASSPHRASE_WEAK', `the new key passphrase is too weak: ${rule}`);
  }
}

/** A PKCS#12 file could not be opened (wrong password or not a PKCS#12). */
export class Pkcs12OpenError extends CliError {
  constructor(file: string, options?: { cause?: unknown }) {
    super('P12_OPEN_FAILED', `cannot open PKCS#12 ${file}: wrong password or not a PKCS#12 file`, options);
  }
}

/** A file given on the command line cannot be read or parsed as the expected type. */
export class InputFileError extends CliError {
  constructor(file: string, expected: string, options?: { cause?: unknown }) {
    super('INPUT_INVALID', `${file} is not ${expected}`, options);
  }
}

/** An imported certificate does not belong to the profile's private key. */
export class CertKeyMismatchError extends CliError {
  constructor() {
    super('CERT_KEY_MISMATCH', 'the certificate does not match the private key in this profile (expected the key made by sigil keygen)');
  }
}

/** An imported certificate or CRL does not chain to, or is not signed by, the pinned CA. */
export class NotTrustedError extends CliError {
  constructor(what: string, detail: string, options?: { cause?: unknown }) {
    super('NOT_TRUSTED', `${what} is not trusted by the pinned CA: ${detail}`, options);
  }
}

/** No session saved in the profile, or the saved one has expired. */
export class NotLoggedInError extends CliError {
  constructor(detail = 'not logged in') {
    super('NOT_LOGGED_IN', `${detail}; run: sigil login`);
  }
}

/** The server could not be reached (connection refused, DNS, timeout). */
export class ServerUnreachableError extends CliError {
  constructor(url: string, options?: { cause?: unknown }) {
    super('SERVER_UNREACHABLE', `cannot reach ${url}`, options);
  }
}

/** The server kept the connection alive but did not finish its answer in time. */
export class ServerTooSlowError extends CliError {
  constructor(url: string, ms: number) {
    super('SERVER_TOO_SLOW', `${url} did not finish its answer within ${Math.round(ms / 1000)} s`);
  }
}

/** The server's TLS certificate does not chain to the pinned CA or does not name the host. */
export class ServerUntrustedError extends CliError {
  constructor(url: string, detail: string, options?: { cause?: unknown }) {
    super('SERVER_UNTRUSTED', `server ${url} failed verification against the pinned CA: ${detail}`, options);
  }
}

/** The server refused our client certificate during the TLS handshake. */
export class ClientCertRefusedError extends CliError {
  constructor(url: string, options?: { cause?: unknown }) {
    super('CLIENT_CERT_REFUSED', `server ${url} refused this profile's certificate during the TLS handshake`, options);
  }
}

/** The server answered something that is not the JSON the contract promises. */
export class BadResponseError extends CliError {
  constructor(detail: string, options?: { cause?: unknown }) {
    super('BAD_RESPONSE', `unexpected answer from the server: ${detail}`, options);
  }
}

/**
 * An error answer from the appliance, `{"error":{"code","message","requestId"}}` (server/API.md).
 * `code` is the server's stable code, so exit codes map from it directly.
 */
export class ServerError extends CliError {
  constructor(
    code: string,
    message: string,
    readonly status: number,
    readonly requestId?: string,
  ) {
    super(code, message);
  }
}
