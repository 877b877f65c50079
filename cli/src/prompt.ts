// The prompts, with @inquirer/prompts. `run` shows one prompt and gives its answer: on a terminal it is the
// prompt itself; tests pass @inquirer/testing's `render`, which drives the same prompts through a virtual screen.
import { confirm, input, password, select } from '@inquirer/prompts';
import type { Ask } from './questions.ts';

export type Prompt<V, C> = (config: C, context?: { input?: NodeJS.ReadableStream; output?: NodeJS.WritableStream }) => Promise<V>;
export type Run = <V, C>(prompt: Prompt<V, C>, config: C) => Promise<V>;

export const terminalRun: Run = (prompt, config) => prompt(config);

export function inquirerAsk(run: Run, say: (text: string) => void): Ask {
  return {
    input: (q) => run(input as Prompt<string, typeof q>, q),
    // mask: one '*' per character typed; the text itself is never echoed.
    password: (q) => run(password as Prompt<string, typeof q & { mask: string }>, { ...q, mask: '*' }),
    select: (q) => run(select as Prompt<string, typeof q>, q),
    confirm: (q) => run(confirm as Prompt<boolean, typeof q>, q),
    say,
  };
}
