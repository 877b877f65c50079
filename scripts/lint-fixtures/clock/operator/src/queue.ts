// The wall clock read directly, twice: Date.now() and an argument-less new Date().
export const due = (ms: number): number => Date.now() + ms;
export const stamp = (): string => new Date().toISOString();
