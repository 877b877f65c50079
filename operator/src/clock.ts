// The operator's clock: the queue's backoff, leader election, informer health and override expiry read time
// through it, so a test can drive them; nothing else in operator/src reads the wall clock (npm run lint).
export interface Clock {
  /** Unix milliseconds. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };
