// Locality: inside a level, backends of the proxy's own region are preferred while any of them serves.
// Pure: given the serving backends of a level, returns the ones to balance over.

export interface Located {
  readonly region: string | undefined;
}

export function preferRegion<T extends Located>(serving: readonly T[], region: string | undefined): readonly T[] {
  if (region === undefined) return serving;
  const local = serving.filter((b) => b.region === region);
  return local.length > 0 ? local : serving;
}
