// The access log of one data-plane process (dataplane/access-log.ts), wired to the wall clock, the dropped-lines
// counter and a logger that reports each distinct failure once (a full disk would otherwise log per write).
import { AccessLog } from '../dataplane/access-log.ts';
import { systemClock } from '../control/clock.ts';

export function createAccessLog(log: { error(obj: object, msg: string): void }, dropped: () => void): AccessLog {
  let last = '';
  return new AccessLog({
    now: () => systemClock.now(),
    dropped,
    failed: (message) => {
      if (message === last) return;
      last = message;
      log.error({ err: message }, 'access log failed; its lines are dropped until it works again');
    },
  });
}
