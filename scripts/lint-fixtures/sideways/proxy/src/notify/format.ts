export function formatSubject(): string { return ''; }
