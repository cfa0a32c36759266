/**
 * zod schemas of the profile's JSON files, apart from profile.ts so that zod is loaded only when
 * a profile file is actually read or written (not for `--help`).
 */
import { z } from 'zod';
import type { ProfileConfig, Session } from './profile.js';

export const ProfileConfigSchema: z.ZodType<ProfileConfig> = z.object({
  version: z.literal(1),
  server: z.string().url(),
  login: z.string().min(1).optional(),
});

export const SessionSchema: z.ZodType<Session> = z.object({
  token: z.string().min(1),
  expiresAt: z.string(),
  login: z.string(),
  mustChangePassword: z.boolean(),
});
