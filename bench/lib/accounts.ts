/**
 * Accounts on the appliance under load, made as a person would: the officer's first login from
 * init's PKCS#12, then per user the officer API creates the account and issues a certificate from a
 * CSR, and the user signs in (challenge, signed nonce, first login with the signed envelope
 * receipt). Also `signB64`, the detached CMS signature every signed request carries.
 */
import { readFileSync } from 'node:fs';
import {
  Certificate,
  createCsr,
  exportPrivateKeyPem,
  generateKeyPair,
  openPkcs12,
  signDetached,
  type Clearance,
  type CryptoKey,
  type CryptoKeyPair,
  type ProfileName,
} from '../../pki/index.js';
import { envelopeReceiptStatement, loginStatement } from '../../server/index.js';
import { Client, type LoadResponse } from './https-client.js';
import type { InitJson } from './server-proc.js';

const enc = new TextEncoder();

/** A logged-in user with its key, certificate and client. */
export interface LoadUser {
  login: string;
  cert: Certificate;
  key: CryptoKey;
  certPem: string;
  keyPem: string;
  password: string;
  client: Client;
}

/** Signs `content` with the user's key: detached CMS, base64. */
export async function signB64(u: { cert: Certificate; key: CryptoKey }, content: Uint8Array | string, label?: Clearance): Promise<string> {
  const bytes = typeof content === 'string' ? enc.encode(content) : content;
  const sig = await signDetached({ content: bytes, signerCert: u.cert, signerKey: u.key, ...(label ? { label } : {}) });
  return Buffer.from(sig).toString('base64');
}

/** Challenge + signed nonce + login over `client`; throws on a non-200. Returns the login answer. */
export async function login(client: Client, u: { login: string; cert: Certificate; key: CryptoKey }, password: string): Promise<LoadResponse> {
  const ch = await client.request('/v1/auth/challenge', { body: { login: u.login }, token: '' });
  if (ch.status !== 200) throw new Error(`challenge ${u.login}: ${ch.status} ${JSON.stringify(ch.body)}`);
  const signature = await signB64(u, loginStatement(u.login, ch.body.nonce));
  const r = await client.request('/v1/auth/login', { body: { login: u.login, password, nonce: ch.body.nonce, signature }, token: '' });
  if (r.status !== 200) throw new Error(`login ${u.login}: ${r.status} ${JSON.stringify(r.body)}`);
  return r;
}

/** Login with the envelope password, then first-login with a new password and the signed receipt. */
async function firstLogin(client: Client, u: { login: string; cert: Certificate; key: CryptoKey }, envelopePassword: string, newPassword: string): Promise<string> {
  const r = await login(client, u, envelopePassword);
  const receipt = await signB64(u, envelopeReceiptStatement(u.login, r.body.envelopeSerial));
  const f = await client.request('/v1/auth/first-login', { body: { newPassword, receipt }, token: r.body.token });
  if (f.status !== 200) throw new Error(`first-login ${u.login}: ${f.status} ${JSON.stringify(f.body)}`);
  return r.body.token as string;
}

/** The officer of a fresh data dir, first login done, over a keep-alive client. */
export async function officerOf(url: string, init: InitJson, maxSockets = 4): Promise<LoadUser & { caPem: string }> {
  const caPem = readFileSync(init.ca.chain, 'utf8');
  const p12 = await openPkcs12(new Uint8Array(readFileSync(init.officer.p12)), init.officer.p12Password);
  const keyPem = await exportPrivateKeyPem(p12.key);
  const client = new Client(url, caPem, p12.cert.pem, keyPem, maxSockets);
  const password = 'Chosen-passphrase-of-the-SO-1';
  client.token = await firstLogin(client, { login: init.officer.login, cert: p12.cert, key: p12.key }, init.officer.envelopePassword, password);
  return { login: init.officer.login, cert: p12.cert, key: p12.key, certPem: p12.cert.pem, keyPem, password, client, caPem };
}

/** The officer creates an account, issues a certificate from a CSR; the user does the first login. */
export async function createUser(
  officer: LoadUser & { caPem: string },
  p: { login: string; clearance: Clearance; profile: ProfileName; role?: string; maxSockets?: number },
): Promise<LoadUser> {
  const created = await officer.client.request('/v1/users', {
    body: { login: p.login, fullName: `User ${p.login}`, department: 'Load', clearance: p.clearance, role: p.role ?? 'staff' },
  });
  if (created.status !== 201) throw new Error(`create ${p.login}: ${created.status} ${JSON.stringify(created.body)}`);
  const keyPair = (await generateKeyPair(p.profile)) as CryptoKeyPair;
  const csr = await createCsr({ keyPair, subject: { commonName: p.login } });
  const issued = await officer.client.request(`/v1/users/${p.login}/certificates`, { body: { csr: csr.pem } });
  if (issued.status !== 201) throw new Error(`issue ${p.login}: ${issued.status} ${JSON.stringify(issued.body)}`);
  const cert = Certificate.fromPem(issued.body.certificate as string);
  const keyPem = await exportPrivateKeyPem(keyPair.privateKey);
  const client = new Client(officer.client.url, officer.caPem, cert.pem, keyPem, p.maxSockets ?? 1);
  const password = `Chosen-passphrase-${Buffer.from(p.login).toString("hex")}-2`;
  const u = { login: p.login, cert, key: keyPair.privateKey };
  client.token = await firstLogin(client, u, created.body.envelope.password as string, password);
  return { ...u, certPem: cert.pem, keyPem, password, client };
}
