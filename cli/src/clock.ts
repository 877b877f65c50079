// The CLI's one wall clock (lint: the only cli/src module that reads it).
export const systemNow = (): number => Date.now();
