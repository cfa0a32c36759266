/**
 * Signed statements of the login flow (API.md "Signed statements"): the UTF-8 bytes of an
 * RFC 8785 canonical JSON object whose `purpose` names what it is. Clients sign exactly these
 * bytes (CMS SignedData, detached); the server rebuilds them and verifies.
 */
import { canonicalJson } from '../../pki/index.js';

/** Bytes signed to prove possession of the certificate key at login. */
export function loginStatement(login: string, nonce: string): Uint8Array {
  return encode({ purpose: 'sigil-login', login, nonce });
}

/** Bytes signed as the digital receipt of an envelope. */
export function envelopeReceiptStatement(login: string, envelopeSerial: string): Uint8Array {
  return encode({ purpose: 'sigil-envelope-receipt', login, envelopeSerial });
}

function encode(value: Record<string, string>): Uint8Array {
  return new TextEncoder().encode(canonicalJson(value));
}
