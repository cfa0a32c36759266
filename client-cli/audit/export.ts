/**
 * `sigil audit export --out DIR`: everything an auditor needs to verify the trail on a machine
 * that never touches the appliance — the entries (JSON lines), every signed checkpoint, the
 * latest one as files openssl reads, the certificate chain, the pinned CA and the CRL, and a
 * README saying how to check it all.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { CheckpointWire } from './api.js';
import { b64bytes } from './api.js';
import { makeOwnFolder, NewFiles, OutputFileError } from '../output-file.js';
import { AuditExportExistsError } from './errors.js';
import { EXPORT_FILES } from './sources.js';
import type { TrailSource } from './verify.js';

/** What goes in besides the trail itself. */
export interface ExportInput {
  source: TrailSource & { latestWire(): Promise<CheckpointWire> };
  /**
   * Every stored checkpoint up to and including the latest one (`source.latestWire()`), as served
   * (wire form, JSON lines): those signed after it are not part of this export (`httpSource`'s
   * `checkpointWires()`).
   */
  checkpoints: AsyncIterable<CheckpointWire>;
  chainPem: string;
  pinnedPem: string;
  crlPem?: string;
  now: Date;
}

/** Counts of what was written. */
export interface ExportResult {
  dir: string;
  origin: string;
  size: number;
  checkpoints: number;
}

/**
 * Resolves when `out` drains, or closes: a stream that failed never drains (its error is kept by
 * the caller). Both listeners go once either fires, so a long export waiting on many drains does
 * not pile up 'close' listeners (past ten, Node warns on stderr).
 */
function drainedOrClosed(out: NodeJS.WritableStream): Promise<void> {
  return new Promise((go) => {
    const done = (): void => {
      out.off('drain', done);
      out.off('close', done);
      go();
    };
    out.on('drain', done);
    out.on('close', done);
  });
}

async function writeLines<T>(files: NewFiles, path: string, items: AsyncIterable<T>, map: (x: T) => unknown): Promise<number> {
  // A new file (O_EXCL), never through a link planted at the name; the stream closes it.
  const out = (await files.open(path, { mode: 0o644 })).createWriteStream({ encoding: 'utf8' });
  // A write that fails (a full disk) is kept here and named with its file, whenever it comes.
  let failed: unknown;
  out.on('error', (err) => (failed ??= err));
  let n = 0;
  try {
    for await (const x of items) {
      if (failed !== undefined) break;
      if (!out.write(JSON.stringify(map(x)) + '\n')) await drainedOrClosed(out);
      n++;
    }
  } finally {
    if (!out.destroyed) out.end();
    if (!out.closed) await new Promise<void>((go) => void out.once('close', () => go()));
  }
  if (failed !== undefined) throw new OutputFileError(path, failed);
  return n;
}

/**
 * Writes an export folder (which must be absent or empty, and this user's alone: see
 * `makeOwnFolder`). Every file is created new (O_EXCL), never written through a link.
 */
export async function writeExport(dir: string, x: ExportInput): Promise<ExportResult> {
  await makeOwnFolder(dir);
  if ((await readdir(dir)).length > 0) throw new AuditExportExistsError(dir);
  // On any failure the files written so far are removed: the folder is left empty, as it was,
  // never holding an export cut short (a full disk used to leave entries.jsonl half written).
  const files = new NewFiles();
  try {
    return await writeExportFiles(dir, x, files);
  } catch (err) {
    await files.removeAll();
    throw err;
  }
}

async function writeExportFiles(dir: string, x: ExportInput, files: NewFiles): Promise<ExportResult> {
  const writeFile = (path: string, data: string | Uint8Array) => files.write(path, data, { mode: 0o644 });
  const latest = await x.source.latestWire();
  const p = (f: keyof typeof EXPORT_FILES) => join(dir, EXPORT_FILES[f]);
  await writeFile(p('latestNote'), latest.note);
  await writeFile(p('latestSig'), b64bytes(latest.signature));
  await writeFile(p('chain'), x.chainPem);
  await writeFile(p('ca'), x.pinnedPem);
  if (x.crlPem) await writeFile(p('crl'), x.crlPem);
  const size = await writeLines(files, p('entries'), x.source.entries(0, latest.size), (e) => ({
    seq: e.seq,
    data: e.data,
    leafHash: e.leafHash ? Buffer.from(e.leafHash).toString('base64') : undefined,
  }));
  const checkpoints = await writeLines(files, p('checkpoints'), x.checkpoints, (c) => c);
  await writeFile(
    p('manifest'),
    JSON.stringify({ version: 1, origin: latest.origin, size: latest.size, entriesWritten: size, checkpoints, exportedAt: x.now.toISOString() }, null, 2) + '\n',
  );
  await writeFile(p('readme'), readme(latest, size));
  return { dir, origin: latest.origin, size, checkpoints };
}

function readme(latest: CheckpointWire, n: number): string {
  return `# Sigil audit trail export

Log "${latest.origin}", ${latest.size} entries (${n} written), latest checkpoint signed ${latest.time}.

| file | what |
|---|---|
| ${EXPORT_FILES.entries} | one entry per line: {seq, data, leafHash}; \`data\` is the RFC 8785 canonical JSON that was hashed, leaf hash = SHA-256(0x00 ‖ data) (RFC 9162 §2.1.1) |
| ${EXPORT_FILES.checkpoints} | every checkpoint the appliance signed up to the latest one below: {id, origin, size, root, time, note, signature (base64 DER CMS)} |
| ${EXPORT_FILES.latestNote}, ${EXPORT_FILES.latestSig} | the latest checkpoint note and its detached CMS signature (DER) |
| ${EXPORT_FILES.chain} | audit-signing certificate, issuing CA, root CA as served by the appliance |
| ${EXPORT_FILES.ca} | the CA certificate(s) pinned in the exporting profile |
| ${EXPORT_FILES.crl} | the CRL current at export time (absent if none was published) |

Verify everything, offline (names the first failing entry):

    sigil audit verify --offline . --ca YOUR-PINNED-ROOT.pem [--since saved-checkpoint.json]

Verify the latest checkpoint's signature with OpenSSL (the audit certificate carries Sigil's own
audit EKU, hence \`-purpose any\`):

    openssl cms -verify -binary -inform DER -in ${EXPORT_FILES.latestSig} -content ${EXPORT_FILES.latestNote} \\
      -CAfile ${EXPORT_FILES.ca} -certfile ${EXPORT_FILES.chain} -purpose any -out /dev/null

The note reads: origin, tree size, base64 RFC 9162 root hash, RFC 3339 time. Entries never hold
message content: messages appear by a keyed hash, deletions as tombstones (who, when, why, keyed
hash of what).
`;
}
