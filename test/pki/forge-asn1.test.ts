/**
 * pki/forge-asn1.ts loads node-forge's DER codec alone (lib/asn1.js), not the whole package: the
 * server's message check workers import it, and the package entry costs each isolate ~6 MiB
 * (bench/README.md). These tests hold it to the package's own `forge.asn1` and check that the
 * verify path's module graph loads no other forge module.
 */
import t from 'tap';
import { createRequire } from 'node:module';
import { asn1 } from '../../pki/forge-asn1.js';
import { signDetached, verifyDetachedSync } from '../../pki/index.js';
import { makeTestCa } from '../helpers/pki-fixtures.js';

const require = createRequire(import.meta.url);

function forgeModulesLoaded(): string[] {
  return Object.keys(require.cache)
    .map((p) => /node-forge[\\/]lib[\\/](.+)$/.exec(p)?.[1])
    .filter((m): m is string => m !== undefined)
    .sort();
}

t.test('when pki verifies a CMS signature then only forge asn1 and what it requires are loaded', async (t) => {
  const c = await makeTestCa('p384');
  const alice = await c.staff('alice', 'secret');
  const content = new TextEncoder().encode('{"hello":"forge"}');
  const sig = await signDetached({ content, signerCert: alice.cert, signerKey: alice.key, label: 'secret' });
  t.equal(verifyDetachedSync(sig, content, { expectedSigner: alice.cert }).ok, true);
  // Before the package entry is loaded by this test below: the verify path must not have loaded it.
  t.same(forgeModulesLoaded(), ['asn1.js', 'baseN.js', 'forge.js', 'oids.js', 'util.js']);
});

t.test('when DER goes through forge-asn1 then it matches the node-forge package asn1', async (t) => {
  const forge = require('node-forge') as typeof import('node-forge');
  t.equal(asn1, forge.asn1, 'the same module object the package exposes');
  const der = Buffer.from('300b060352040102010502017f', 'hex').toString('binary');
  const node = asn1.fromDer(der, { strict: true, parseAllBytes: true, decodeBitStrings: false } as never);
  t.equal(asn1.toDer(node).getBytes(), der, 'DER re-encodes to the same bytes');
  t.throws(() => asn1.fromDer(der.slice(0, -1), { strict: true, parseAllBytes: true } as never), 'truncated DER is refused');
});
