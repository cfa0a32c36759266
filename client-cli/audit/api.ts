/**
 * Shapes of the appliance's `/v1/audit` answers (server/API.md, "Audit"), checked with zod before
 * anything reads them. Loose objects, so additive server changes do not break old CLIs.
 */
import { z } from 'zod';

export const CheckpointWireSchema = z
  .object({
    id: z.number().int().optional(),
    origin: z.string(),
    size: z.number().int().min(0),
    root: z.string(),
    time: z.string(),
    note: z.string(),
    signature: z.string(),
  })
  .passthrough();
export type CheckpointWire = z.infer<typeof CheckpointWireSchema>;

export const CheckpointAnswerSchema = z.object({ checkpoint: CheckpointWireSchema, chain: z.string() }).passthrough();
export const CheckpointsAnswerSchema = z.object({ checkpoints: z.array(CheckpointWireSchema), chain: z.string() }).passthrough();

export const EntryWireSchema = z.object({ seq: z.number().int().min(0), data: z.string(), leafHash: z.string() }).passthrough();
export type EntryWire = z.infer<typeof EntryWireSchema>;
export const EntriesAnswerSchema = z
  .object({ size: z.number().int(), from: z.number().int(), to: z.number().int(), entries: z.array(EntryWireSchema) })
  .passthrough();

export const ConsistencyAnswerSchema = z.object({ from: z.number().int(), to: z.number().int(), proof: z.array(z.string()) }).passthrough();
export const InclusionAnswerSchema = z
  .object({
    index: z.number().int(),
    size: z.number().int(),
    leafHash: z.string().nullable(),
    /** The entry exactly as hashed (server/API.md): sent to auditors and officers only. */
    leafData: z.string().optional(),
    proof: z.array(z.string()),
    checkpoint: CheckpointWireSchema.nullable(),
  })
  .passthrough();

export const EventWireSchema = z
  .object({
    seq: z.number().int(),
    at: z.string(),
    type: z.string(),
    actor: z.string().optional(),
    subject: z.string().optional(),
    data: z.record(z.string(), z.unknown()).optional(),
  })
  .passthrough();
export type EventWire = z.infer<typeof EventWireSchema>;
export const EventsAnswerSchema = z.object({ events: z.array(EventWireSchema), next: z.number().int().nullable() }).passthrough();

export const RoomAccessAnswerSchema = z
  .object({
    seq: z.number().int(),
    pass: z.string(),
    person: z.string(),
    direction: z.string(),
    at: z.string(),
    recordedBy: z.string(),
    recordedAt: z.string(),
  })
  .passthrough();

export const CrlAnswerSchema = z.object({ crl: z.string() }).passthrough();

export const b64bytes = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64'));
