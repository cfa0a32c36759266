/**
 * node-forge's DER reader and writer, and nothing else of node-forge. Internal to pki/.
 *
 * Why not `import forge from 'node-forge'`: the package entry loads every forge module (TLS, RSA,
 * PKCS#7, PKCS#12, its ciphers and PRNG), ~6 MiB of heap in every isolate that imports it, and
 * pki/ only uses `forge.asn1` (cms-parse.ts says why). The server's message check workers each
 * load this, so the whole package cost 12 MiB of RSS while they live; `lib/asn1.js` loads only
 * asn1, util and oids. A test holds this module to the package's own `forge.asn1`.
 */
import { createRequire } from 'node:module';
import type forge from 'node-forge';

// node-forge 1.x is CommonJS without an "exports" map, so its lib/ files are public paths.
export const asn1: typeof forge.asn1 = createRequire(import.meta.url)('node-forge/lib/asn1.js');

export type Asn1 = forge.asn1.Asn1;
