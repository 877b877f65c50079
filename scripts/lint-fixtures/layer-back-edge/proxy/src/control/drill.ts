// The control core throwing the HTTP layer's error: control (layer 5) importing admin (layer 6).
import { AdminError } from '../admin/server.ts';
export function drill(): never { throw new AdminError('unknown pool'); }
