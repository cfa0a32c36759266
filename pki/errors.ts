/**
 * Failure modes of pki/. One class per mode, each with a stable string `code` that the server maps to
 * an HTTP status and the CLI maps to an exit code. The original error, if any, is kept as `cause`.
 * Messages say what was expected and what was found, never echo key material or raw input.
 */

/** Base class of every pki/ error. */
export class PkiError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** Input that is not the PEM/DER structure it claims to be (garbage, truncated, wrong label). */
export class MalformedInputError extends PkiError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('MALFORMED_INPUT', message, options);
  }
}

/** An algorithm or profile name Sigil does not support. */
export class UnknownAlgorithmError extends PkiError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('UNKNOWN_ALGORITHM', message, options);
  }
}

/** A supported algorithm, but not the one this appliance's profile requires. */
export class WrongAlgorithmError extends PkiError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('WRONG_ALGORITHM', message, options);
  }
}

/** An encrypted PKCS#8 private key could not be opened with the given passphrase (or none was given). */
export class BadPassphraseError extends PkiError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('BAD_PASSPHRASE', message, options);
  }
}

/** A PKCS#12 file whose integrity MAC or encryption does not open with the given password. */
export class BadPasswordError extends PkiError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('PKCS12_BAD_PASSWORD', message, options);
  }
}

/** A PKCS#12 file that opened but lacks a private key or the certificate matching it. */
export class Pkcs12IncompleteError extends PkiError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('PKCS12_INCOMPLETE', message, options);
  }
}

/** A PKCS#10 request whose self-signature does not verify: no proof of possession of the key. */
export class BadCsrSignatureError extends PkiError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CSR_BAD_SIGNATURE', message, options);
  }
}

/** A parameter outside its allowed range (empty name, bad IP address, non-positive validity, …). */
export class InvalidParameterError extends PkiError {
  readonly field: string;

  constructor(field: string, message: string, options?: { cause?: unknown }) {
    super('INVALID_PARAMETER', `${field}: ${message}`, options);
    this.field = field;
  }
}

/** An issuer built from a certificate that is not a CA, or from a key that is not the certificate's. */
export class IssuerMismatchError extends PkiError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ISSUER_MISMATCH', message, options);
  }
}

/**
 * The issuing CA's own certificate has expired: nothing it signs now could be valid (RFC 5280
 * §6.1.3 checks every certificate of the path at once). The CA must be renewed first.
 */
export class IssuerExpiredError extends PkiError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ISSUER_EXPIRED', message, options);
  }
}
