// Allowed: admin (layer 6) sees control only through control/api.ts; new Date(ms) has an argument.
import type { ControlApi } from '../control/api.ts';
import { loadConfigText } from '@veloflux/config/load';
export const at = (c: ControlApi, ms: number): string => `${String(c)} ${new Date(ms).toISOString()} ${typeof loadConfigText}`;
