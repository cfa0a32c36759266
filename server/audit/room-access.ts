/**
 * The room access register (requirement 8: the appliance's room is entered by pass, arrival and
 * departure times recorded). A security officer records each entry and exit; each record is one
 * audit log entry (`room.entry` / `room.exit`), so the register is as tamper-evident as the rest
 * of the trail and is covered by the same signed checkpoints.
 */
import { z } from 'zod';
import { AuditRoomAccessInvalidError } from './errors.js';
import type { AuditLog } from './log.js';

/** How far in the future a recorded time may be (clock skew between the desk and the appliance). */
const FUTURE_SLACK_MS = 60_000;

/** `POST /v1/audit/room-access` body. `at` defaults to the appliance's now. */
export const RoomAccessSchema = z
  .object({
    pass: z.string().min(1).max(64).regex(/^[A-Za-z0-9][A-Za-z0-9._/-]*$/, 'letters, digits and . _ / -'),
    person: z.string().trim().min(1).max(200).regex(/^[^\x00-\x1f\x7f]+$/, 'one line of text'),
    direction: z.enum(['entry', 'exit']),
    at: z.iso.datetime({ offset: true }).optional(),
  })
  .strict();
export type RoomAccessInput = z.infer<typeof RoomAccessSchema>;

/** A recorded passage, as returned to the officer. */
export interface RoomAccessRecord {
  seq: number;
  pass: string;
  person: string;
  direction: 'entry' | 'exit';
  /** When the person passed (given, or the time of recording). */
  at: string;
  recordedBy: string;
  recordedAt: string;
}

/**
 * Appends one passage to the audit log.
 * @throws AuditRoomAccessInvalidError when `at` is more than a minute in the future or the
 *   input fails {@link RoomAccessSchema}.
 */
export async function recordRoomAccess(log: AuditLog, officer: string, input: RoomAccessInput, now: () => Date): Promise<RoomAccessRecord> {
  const parsed = RoomAccessSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new AuditRoomAccessInvalidError(`${issue?.path.join('.') || 'body'}: ${issue?.message ?? 'invalid'}`);
  }
  const r = parsed.data;
  const recordedAt = now();
  const at = r.at !== undefined ? new Date(r.at) : recordedAt;
  if (at.getTime() > recordedAt.getTime() + FUTURE_SLACK_MS) {
    throw new AuditRoomAccessInvalidError(`at: ${at.toISOString()} is in the future (now ${recordedAt.toISOString()})`);
  }
  const [entry] = await log.append([
    {
      type: `room.${r.direction}`,
      actor: officer,
      subject: `pass:${r.pass}`,
      at: recordedAt,
      data: { pass: r.pass, person: r.person, direction: r.direction, time: at.toISOString() },
    },
  ]);
  return {
    seq: entry!.seq,
    pass: r.pass,
    person: r.person,
    direction: r.direction,
    at: at.toISOString(),
    recordedBy: officer,
    recordedAt: recordedAt.toISOString(),
  };
}
