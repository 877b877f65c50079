// The one clock of the proxy's control side. Decisions take `now` from it, so tests drive time with a manual
// clock and nothing in control/, admin/, metrics/ or notify/ reads the wall clock itself (npm run lint).
export interface Clock {
  /** Unix milliseconds. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };
