/**
 * How much of what a message check allocates survives V8's scavenges — the cost the check workers
 * pay in GC, not in crypto. Each phase of the worker's path runs in a loop in a child process with
 * `--trace-gc-nvp`; the script adds up the scavenges' `allocated` and `new_space_survived` and
 * prints the survival ratio (what was copied, and then promoted to old space, where only a major
 * GC frees it) beside the time per iteration.
 *
 *   make build && node dist/bench/experiments/gc-survival.js
 *
 * Phases: `parse` (pki's CMS reading), `verify` (verifyDetachedSync: parse + P-384 verify),
 * `seal` (a message key wrapped and the message sealed, seal-sync.ts), and `literal-getter`: the
 * parse's result wrapped in an object literal with a getter, as cms-parse.ts returned it before
 * the seventh session — the control that shows what made 40 % of a parse survive.
 * Knobs: BENCH_ITERATIONS (20,000; verify runs a tenth). Not run by `make bench`.
 */
import { spawnSync } from 'node:child_process';
import { KeyObject, webcrypto } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { verifyDetachedSync } from '../../pki/index.js';
import { parseSignedData } from '../../pki/cms-parse.js';
import { createWrappedKeySync, sealSync } from '../../server/vault/seal-sync.js';
import { dekAad } from '../../server/vault/key-wrap.js';
import { messageAad, packMessage } from '../../server/messaging/sealed-message.js';
import { sampleSigner, signedSamples, type SampleMessage } from '../lib/signed-sample.js';

const PHASES = ['parse', 'verify', 'seal', 'literal-getter'] as const;
type Phase = (typeof PHASES)[number];
const ITERATIONS = Number(process.env.BENCH_ITERATIONS ?? 20_000);

async function runPhase(phase: Phase): Promise<void> {
  const signer = await sampleSigner();
  const cert = signer.cert;
  const [{ id, header, signature, body }] = (await signedSamples(1, signer)) as [SampleMessage];
  const ckKey = KeyObject.from(await webcrypto.subtle.importKey('raw', webcrypto.getRandomValues(new Uint8Array(32)), 'AES-GCM', true, ['encrypt']));

  const n = phase === 'verify' ? Math.ceil(ITERATIONS / 10) : ITERATIONS;
  let sink = 0;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    if (phase === 'parse') sink += parseSignedData(signature).signer.signature.length;
    else if (phase === 'verify') sink += verifyDetachedSync(signature, header, { expectedSigner: cert }).ok ? 1 : 0;
    else if (phase === 'seal') {
      const { raw, wrapped } = createWrappedKeySync(ckKey, dekAad(id));
      sink += wrapped.length + sealSync(raw, packMessage(header, signature, body), messageAad(id)).length;
      raw.fill(0);
    } else {
      const parsed = parseSignedData(signature);
      const literal = {
        get certificates() {
          return parsed.certificates;
        },
        signer: parsed.signer,
      };
      sink += literal.signer.signature.length;
    }
  }
  process.stdout.write(`RESULT ${((performance.now() - t0) * 1000) / n} ${sink}\n`);
}

function nvp(line: string, key: string): number {
  return Number(new RegExp(`\\b${key}=(\\d+)`).exec(line)?.[1] ?? 0);
}

function main(): void {
  console.log(`gc-survival: ${ITERATIONS} iterations per phase (verify ${Math.ceil(ITERATIONS / 10)}), node ${process.version}`);
  console.log('phase            µs/iter  scavenges  allocated MB  survived MB  survival');
  for (const phase of PHASES) {
    const r = spawnSync(process.execPath, ['--trace-gc-nvp', fileURLToPath(import.meta.url), phase], { encoding: 'utf8', maxBuffer: 64 << 20 });
    if (r.status !== 0) throw new Error(`${phase}: exit ${r.status}: ${r.stderr}`);
    // Skip the set-up's scavenges (CA, keys, signing): count those after the loop's first.
    const scavenges = r.stdout.split('\n').filter((l) => l.includes('gc=s '));
    const counted = scavenges.slice(Math.min(3, Math.max(0, scavenges.length - 1)));
    const allocated = counted.reduce((s, l) => s + nvp(l, 'allocated'), 0);
    const survived = counted.reduce((s, l) => s + nvp(l, 'new_space_survived'), 0);
    const us = Number(/RESULT ([\d.]+)/.exec(r.stdout)?.[1] ?? NaN);
    console.log(
      `${phase.padEnd(15)} ${us.toFixed(1).padStart(8)} ${String(counted.length).padStart(10)} ${(allocated / 1e6).toFixed(1).padStart(13)} ${(survived / 1e6).toFixed(1).padStart(12)} ${((100 * survived) / Math.max(allocated, 1)).toFixed(1).padStart(8)} %`,
    );
  }
}

const phase = process.argv[2] as Phase | undefined;
if (phase && (PHASES as readonly string[]).includes(phase)) await runPhase(phase);
else main();
