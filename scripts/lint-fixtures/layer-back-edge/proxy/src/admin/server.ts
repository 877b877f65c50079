export class AdminError extends Error {}
