/**
 * WebCrypto types. tsconfig has no DOM lib, so the global `CryptoKey` is not declared; Node's
 * `webcrypto` namespace has the same types.
 */
import type { webcrypto } from 'node:crypto';

/** A WebCrypto key handle (the vault's keys are non-extractable AES-256-GCM). */
export type CryptoKey = webcrypto.CryptoKey;
/** A WebCrypto key usage. */
export type KeyUsage = webcrypto.KeyUsage;
