export function loadConfigText(text: string): string { return text; }
