/**
 * The sealed envelope: a one-time password handed to an employee against their signature.
 *
 * The envelope carries a serial number, the login, the one-time password, the issuing officer,
 * the date of issue and expiry, and a receipt line to sign on paper. The same serial is later
 * signed with the user's certificate key at first login (`sigil-envelope-receipt`, see API.md):
 * the digital receipt "against signature".
 */
import { randomBytes } from 'node:crypto';

/** What an officer receives for printing. `password` appears here and nowhere else. */
export interface Envelope {
  serial: string;
  login: string;
  password: string;
  issuedBy: string;
  issuedAt: string;
  expiresAt: string;
  text: string;
  html: string;
}

/** Fields of an envelope before rendering. */
export interface EnvelopeFields {
  serial: string;
  login: string;
  fullName: string;
  password: string;
  issuedBy: string;
  issuedAt: Date;
  expiresAt: Date;
  org: string;
}

/** A new envelope serial: `ENV-` + 12 upper-case hex digits (48 random bits, unique per appliance in practice; the store enforces it). */
export function newEnvelopeSerial(random: (n: number) => Buffer = randomBytes): string {
  return `ENV-${random(6).toString('hex').toUpperCase()}`;
}

const RECEIPT =
  'I received this envelope sealed, and I will change the password at first login and keep it secret.';

/** Plain-text envelope, 72 columns, for printers without HTML. */
export function renderEnvelopeText(f: EnvelopeFields): string {
  const lines = [
    `${f.org} — SIGIL ACCESS ENVELOPE — CONFIDENTIAL`,
    '',
    `Envelope serial : ${f.serial}`,
    `Login           : ${f.login}`,
    `Name            : ${f.fullName}`,
    `One-time password: ${f.password}`,
    `Issued by       : ${f.issuedBy}`,
    `Issued at       : ${f.issuedAt.toISOString()}`,
    `Expires at      : ${f.expiresAt.toISOString()}`,
    '',
    'The password works once: at first login you must choose a new one',
    '(at least 12 characters) and sign this envelope serial with your key.',
    '',
    `Receipt: ${RECEIPT}`,
    '',
    'Signature: ______________________________   Date: ______________',
    '',
  ];
  return lines.join('\n');
}

/** Escapes text for HTML element content and attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

/** Printable HTML envelope (one A5 page, no scripts, no external resources). */
export function renderEnvelopeHtml(f: EnvelopeFields): string {
  const e = escapeHtml;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Envelope ${e(f.serial)}</title>
<style>
@page { size: A5; margin: 12mm }
body { font: 11pt/1.5 serif }
h1 { font-size: 13pt; border-bottom: 1px solid #000 }
td { padding: 2px 10px 2px 0; vertical-align: top }
.pw { font: 16pt monospace; letter-spacing: .1em }
.sig { margin-top: 16mm }
</style></head>
<body>
<h1>${e(f.org)} — Sigil access envelope — CONFIDENTIAL</h1>
<table>
<tr><td>Envelope serial</td><td><b>${e(f.serial)}</b></td></tr>
<tr><td>Login</td><td><b>${e(f.login)}</b></td></tr>
<tr><td>Name</td><td>${e(f.fullName)}</td></tr>
<tr><td>One-time password</td><td class="pw">${e(f.password)}</td></tr>
<tr><td>Issued by</td><td>${e(f.issuedBy)}</td></tr>
<tr><td>Issued at</td><td>${e(f.issuedAt.toISOString())}</td></tr>
<tr><td>Expires at</td><td>${e(f.expiresAt.toISOString())}</td></tr>
</table>
<p>The password works once: at first login you must choose a new one (at least 12 characters)
and sign this envelope serial with your key.</p>
<p><i>Receipt:</i> ${e(RECEIPT)}</p>
<p class="sig">Signature: ______________________________ &nbsp; Date: ______________</p>
</body></html>
`;
}

/** Renders both forms. */
export function renderEnvelope(f: EnvelopeFields): Envelope {
  return {
    serial: f.serial,
    login: f.login,
    password: f.password,
    issuedBy: f.issuedBy,
    issuedAt: f.issuedAt.toISOString(),
    expiresAt: f.expiresAt.toISOString(),
    text: renderEnvelopeText(f),
    html: renderEnvelopeHtml(f),
  };
}
