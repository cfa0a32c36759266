/**
 * Signed requests as a user's workstation makes them: message headers built, canonicalised and
 * signed (detached CMS) for `POST /v1/messages` and its batch form, and signed `sigil-delete`
 * statements. In-process samples without an appliance are signed-sample.ts.
 */
import { webcrypto } from 'node:crypto';
import type { Certificate, Clearance, CryptoKey } from '../../pki/index.js';
import { canonicalDeleteStatement, canonicalHeader, type MessageHeader } from '../../server/messaging/index.js';
import { signB64 } from './accounts.js';

const enc = new TextEncoder();

/** SHA-384 of bytes, base64. */
export async function sha384b64(bytes: Uint8Array): Promise<string> {
  return Buffer.from(await webcrypto.subtle.digest('SHA-384', bytes)).toString('base64');
}

/** A signed message ready to POST to /v1/messages: the JSON payload and its id. */
export interface SignedMessage {
  id: string;
  conversation: string;
  payload: string;
}

/**
 * The body of `POST /v1/messages/batch` for pre-signed messages: their payloads are JSON objects
 * already, so they are joined, not parsed and serialised again.
 */
export function batchPayload(ms: readonly SignedMessage[]): string {
  return `{"messages":[${ms.map((m) => m.payload).join(',')}]}`;
}

/**
 * A `sigil-message` header from `sender` in `conversation` for a body of that digest and size,
 * with what a load sends unless `over` says otherwise: label `restricted`, not urgent, no reply,
 * no attachments, sent now, a fresh random id.
 */
export function messageHeader(sender: string, conversation: string, body: { sha384: string; size: number }, over: Partial<MessageHeader> = {}): MessageHeader {
  return {
    attachments: [],
    body,
    conversation,
    id: Buffer.from(webcrypto.getRandomValues(new Uint8Array(16))).toString('base64url'),
    label: 'restricted',
    purpose: 'sigil-message',
    replyTo: null,
    sender,
    sentAt: new Date().toISOString(),
    urgent: false,
    v: 1,
    ...over,
  };
}

/** Builds and signs a message header for `body` in `conversation` (label `restricted` by default). */
export async function composeMessage(
  u: { login: string; cert: Certificate; key: CryptoKey },
  conversation: string,
  body: Uint8Array | string,
  over: Partial<MessageHeader> = {},
): Promise<SignedMessage> {
  const bytes = typeof body === 'string' ? enc.encode(body) : body;
  const header = messageHeader(u.login, conversation, { sha384: await sha384b64(bytes), size: bytes.length }, over);
  const text = canonicalHeader(header);
  const signature = await signB64(u, text, header.label as Clearance);
  return { id: header.id, conversation, payload: JSON.stringify({ header: text, signature, body: Buffer.from(bytes).toString('base64') }) };
}

/** A signed `sigil-delete` request body for `target`. */
export async function deleteRequest(u: { cert: Certificate; key: CryptoKey }, target: string, reason = 'bench'): Promise<{ reason: string; statement: string; signature: string }> {
  const statement = canonicalDeleteStatement({ at: new Date().toISOString(), purpose: 'sigil-delete', reason, target });
  return { reason, statement, signature: await signB64(u, statement) };
}
