// Siblings on one layer: metrics importing notify.
import { formatSubject } from '../notify/format.ts';
export const subject = formatSubject;
