import t from 'tap';
import { derToPem, pemToDer, splitPemBlocks, toDer } from '../../pki/index.js';
import { openssl } from '../helpers/pki-fixtures.js';

t.test('when DER goes to PEM and back then the bytes are equal and lines are 64 columns', async (t) => {
  const der = new Uint8Array(200).map((_, i) => i);
  const pem = derToPem(der, 'CERTIFICATE');
  t.match(pem, /^-----BEGIN CERTIFICATE-----\n/);
  t.ok(pem.endsWith('-----END CERTIFICATE-----\n'));
  t.ok(pem.split('\n').every((l) => l.length <= 64));
  t.same(pemToDer(pem, 'CERTIFICATE'), der);
  t.same(toDer(pem, 'CERTIFICATE'), der);
  t.same(toDer(der, 'CERTIFICATE'), der);
  t.same(toDer(der.buffer, 'CERTIFICATE'), der);
});

t.test('when text holds several blocks with noise between them then splitPemBlocks returns each with its label', async (t) => {
  const a = derToPem(new Uint8Array([1, 2, 3]), 'X509 CRL');
  const b = derToPem(new Uint8Array([4, 5]), 'CERTIFICATE');
  const blocks = splitPemBlocks(`Bag Attributes\n  friendlyName: x\n${a}subject=...\r\n${b.replace(/\n/g, '\r\n')}`);
  t.same(blocks.map((x) => x.label), ['X509 CRL', 'CERTIFICATE']);
  t.same(blocks[1].der, new Uint8Array([4, 5]));
  t.equal(pemToDer(a + b, 'CERTIFICATE').length, 2, 'finds the block with the asked label');
});

t.test('when openssl writes PEM then we read it and openssl reads ours', async (t) => {
  const key = await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256']);
  const der = pemToDer(key.stdout, 'PRIVATE KEY');
  const back = await openssl(['pkey', '-noout', '-text'], derToPem(der, 'PRIVATE KEY'));
  t.equal(back.code, 0, back.stderr);
  t.match(back.stdout, /prime256v1|P-256/);
});

t.test('when PEM is missing, mislabelled or not base64 then MALFORMED_INPUT', async (t) => {
  t.throws(() => pemToDer('nothing', 'CERTIFICATE'), { code: 'MALFORMED_INPUT' });
  t.throws(() => pemToDer(derToPem(new Uint8Array([1]), 'PRIVATE KEY'), 'CERTIFICATE'), { code: 'MALFORMED_INPUT' });
  t.throws(() => pemToDer('-----BEGIN CERTIFICATE-----\n%%%%\n-----END CERTIFICATE-----', 'CERTIFICATE'), { code: 'MALFORMED_INPUT' });
  t.throws(() => pemToDer('-----BEGIN CERTIFICATE-----\n\n-----END CERTIFICATE-----', 'CERTIFICATE'), { code: 'MALFORMED_INPUT' });
  t.throws(() => toDer(42 as never, 'CERTIFICATE'), { code: 'MALFORMED_INPUT' });
  t.same(splitPemBlocks('-----BEGIN A-----\nAAAA\n-----END B-----'), [], 'unbalanced markers are not a block');
});
