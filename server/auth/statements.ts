/**
 * Signed statements of the login flow (API.md "Signed statements"): the UTF-8 bytes of an
 * RFC 8785 canonical JSON object whose `purpose` names what it is. Clients sign exactly these
 * bytes (CMS SignedData, detached); the server rebuilds them and verifies ({@link signedBy}).
 */
import { canonicalJson, verifyDetached } from '../../pki/index.js';
import type { ClientCert } from '../middleware/types.js';

/** Bytes signed to prove possession of the certificate key at login. */
export function loginStatement(login: string, nonce: string): Uint8Array {
  return encode({ purpose: 'sigil-login', login, nonce });
}

/** Bytes signed as the digital receipt of an envelope. */
export function envelopeReceiptStatement(login: string, envelopeSerial: string): Uint8Array {
  return encode({ purpose: 'sigil-envelope-receipt', login, envelopeSerial });
}

/** Verifies a detached CMS signature made by exactly the TLS certificate. */
export async function signedBy(signatureB64: string, content: Uint8Array, cc: ClientCert): Promise<boolean> {
  const sig = Buffer.from(signatureB64, 'base64');
  if (sig.length === 0) return false;
  try {
    const r = await verifyDetached(new Uint8Array(sig), content, { expectedSigner: cc.cert });
    return r.ok;
  } catch {
    // Malformed CMS is a failed proof, not a server error.
    return false;
  }
}

function encode(value: Record<string, string>): Uint8Array {
  return new TextEncoder().encode(canonicalJson(value));
}
