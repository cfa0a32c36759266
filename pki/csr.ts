/**
 * PKCS#10 certification requests (RFC 2986): parsing, the proof-of-possession check, and creation
 * (the workstation's `sigil keygen` makes one so the private key never leaves it).
 */
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { decodeDer, toArrayBuffer } from './der.js';
import { BadCsrSignatureError } from './errors.js';
import { exportPublicKeySpki } from './keys.js';
import { buildName, nameToString, parseName, type DistinguishedName } from './names.js';
import { derToPem, toDer } from './pem.js';
import { profileOfKey, resolveProfile, type AlgorithmProfile, type ProfileName } from './profiles.js';
import { importSpki } from './spki.js';
import type { CryptoKey, CryptoKeyPair } from './webcrypto.js';

export type CsrSignatureResult = { ok: true } | { ok: false; reason: 'bad-signature'; detail: string };

export class CertificationRequest {
  readonly asn: pkijs.CertificationRequest;
  readonly der: Uint8Array;
  #publicKey?: Promise<CryptoKey>;

  private constructor(der: Uint8Array, asn: pkijs.CertificationRequest) {
    this.der = der;
    this.asn = asn;
  }

  /** @throws MalformedInputError */
  static fromDer(der: Uint8Array | ArrayBuffer): CertificationRequest {
    const bytes = new Uint8Array(der instanceof Uint8Array ? der : new Uint8Array(der)).slice();
    return new CertificationRequest(bytes, decodeDer(bytes, 'PKCS#10 certification request', (schema) => new pkijs.CertificationRequest({ schema })));
  }

  /** Reads a "CERTIFICATE REQUEST" block (or the older "NEW CERTIFICATE REQUEST"). @throws MalformedInputError */
  static fromPem(pem: string): CertificationRequest {
    if (typeof pem === 'string' && pem.includes('BEGIN NEW CERTIFICATE REQUEST')) {
      return CertificationRequest.fromDer(toDer(pem, 'NEW CERTIFICATE REQUEST'));
    }
    return CertificationRequest.fromDer(toDer(pem, 'CERTIFICATE REQUEST'));
  }

  get pem(): string {
    return derToPem(this.der, 'CERTIFICATE REQUEST');
  }

  /** The subject the requester asked for (informative only: the officer decides the issued subject). */
  get subject(): DistinguishedName {
    return parseName(this.asn.subject);
  }

  get subjectString(): string {
    return nameToString(this.asn.subject);
  }

  /** The requested public key, imported for verification. @throws UnknownAlgorithmError */
  publicKey(): Promise<CryptoKey> {
    this.#publicKey ??= importSpki(this.asn.subjectPublicKeyInfo, 'the certification request');
    return this.#publicKey;
  }

  /** Checks the request's self-signature: the requester holds the private key (RFC 2986 §3). */
  async verifySignature(): Promise<CsrSignatureResult> {
    let ok: boolean;
    try {
      ok = await this.asn.verify();
    } catch (cause) {
      return { ok: false, reason: 'bad-signature', detail: `signature could not be checked: ${(cause as Error)?.message ?? String(cause)}` };
    }
    return ok ? { ok: true } : { ok: false, reason: 'bad-signature', detail: 'the request signature does not verify with the requested public key' };
  }

  /** @throws BadCsrSignatureError (`CSR_BAD_SIGNATURE`) when `verifySignature` says no. */
  async assertSignature(): Promise<void> {
    const result = await this.verifySignature();
    if (!result.ok) throw new BadCsrSignatureError(`certification request rejected: ${result.detail}`);
  }
}

export interface CreateCsrParams {
  keyPair: CryptoKeyPair;
  subject: DistinguishedName;
  /** Default: the profile of the key pair. */
  profile?: AlgorithmProfile | ProfileName;
}

/** A PKCS#10 request for `keyPair`, signed with its private key. */
export async function createCsr(params: CreateCsrParams): Promise<CertificationRequest> {
  const profile = params.profile ? resolveProfile(params.profile) : profileOfKey(params.keyPair.privateKey);
  const csr = new pkijs.CertificationRequest();
  csr.version = 0;
  csr.subject = buildName(params.subject);
  const spki = await exportPublicKeySpki(params.keyPair.publicKey);
  csr.subjectPublicKeyInfo = new pkijs.PublicKeyInfo({ schema: asn1js.fromBER(toArrayBuffer(spki)).result });
  csr.attributes = [];
  await csr.sign(params.keyPair.privateKey, profile.hash);
  return CertificationRequest.fromDer(new Uint8Array(csr.toSchema(false).toBER(false)));
}
