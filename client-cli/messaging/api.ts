/**
 * Shapes of the appliance's messaging answers (server/API.md, "Messaging (issue 4)" and "Groups"),
 * checked with zod before any command reads them. Loose objects, as in `../api.ts`, so additive
 * server changes do not break old CLIs.
 */
import { z } from 'zod';

const Member = z.object({ login: z.string(), role: z.string() }).passthrough();

export const ConversationSchema = z
  .object({
    id: z.string(),
    kind: z.enum(['direct', 'group']),
    name: z.string().nullish(),
    peer: z.string().nullish(),
    label: z.string(),
    members: z.array(Member).nullish(),
    unread: z.number(),
    lastSeq: z.number(),
    muted: z.boolean(),
  })
  .passthrough();
export type Conversation = z.infer<typeof ConversationSchema>;

export const ConversationsSchema = z.object({ conversations: z.array(ConversationSchema) }).passthrough();

/** API.md `message`: `header` is the exact signed text, `signature` base64 DER, `body` base64. */
export const MessageSchema = z
  .object({
    seq: z.number(),
    id: z.string(),
    conversation: z.string(),
    sender: z.string(),
    label: z.string(),
    urgent: z.boolean(),
    header: z.string(),
    signature: z.string(),
    body: z.string().nullish(),
    receivedAt: z.string(),
  })
  .passthrough();
export type Message = z.infer<typeof MessageSchema>;

export const MessagePageSchema = z.object({ messages: z.array(MessageSchema), nextBefore: z.number().nullish() }).passthrough();

export const SendReceiptSchema = z
  .object({ id: z.string(), seq: z.number(), conversation: z.string(), serverTime: z.string() })
  .passthrough();
export type SendReceipt = z.infer<typeof SendReceiptSchema>;

export const UploadedSchema = z.object({ fileId: z.string(), sha384: z.string(), size: z.number() }).passthrough();

/** `DELETE /v1/files/:id`: the pending upload is gone. */
export const DiscardedSchema = z.object({ id: z.string(), discarded: z.literal(true) }).passthrough();

export const TombstoneSchema = z
  .object({ id: z.string(), target: z.string(), deletedBy: z.string(), at: z.string(), reason: z.string(), count: z.number() })
  .passthrough();
export type Tombstone = z.infer<typeof TombstoneSchema>;

export const GroupSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    label: z.string(),
    retentionDays: z.number().nullish(),
    createdBy: z.string(),
    createdAt: z.string(),
    members: z.array(Member),
  })
  .passthrough();
export type Group = z.infer<typeof GroupSchema>;

export const GroupsSchema = z.object({ groups: z.array(GroupSchema) }).passthrough();

/** Data of the `ready` live event. */
export const ReadyEventSchema = z.object({ lastEventId: z.number() }).passthrough();

/** Data of the `deleted` live event: without `ids` the whole conversation is gone. */
export const DeletedEventSchema = z.object({ conversation: z.string(), ids: z.array(z.string()).nullish() }).passthrough();
