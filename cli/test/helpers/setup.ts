// Drives `veloflux setup` through its real prompts (@inquirer/prompts) with the library's own test harness
// (@inquirer/testing `render`): each prompt is rendered on a virtual screen, the script checks the message and
// presses keys, and everything the screens showed is kept so a test can assert a secret was never echoed.
import assert from 'node:assert/strict';
import { stripVTControlCharacters } from 'node:util';
import { render } from '@inquirer/testing';
import { inquirerAsk } from '../../src/prompt.ts';
import type { Run } from '../../src/prompt.ts';
import { runSetup } from '../../src/run.ts';
import type { KubeValidator } from '../../src/kube.ts';
import { validateKube } from '../../src/kube-validate.ts';

/** One prompt: its message must match `match`; `answer` is typed (input, password), picked (select) or y/n (confirm); undefined = Enter (the default). */
export interface Step {
  readonly match: RegExp;
  readonly answer?: string | boolean;
  /** Typed first and refused by the prompt's validation (the error must show), then erased. */
  readonly bad?: { text: string; error: RegExp };
}

export interface Driven {
  readonly code: number;
  /** Every screen of every prompt, as the virtual terminal showed it. */
  readonly screens: string;
  readonly out: string;
  readonly err: string;
  /** Steps left unused (should be none). */
  readonly left: number;
}

export async function driveSetup(argv: string[], steps: Step[], opts: { env?: Record<string, string>; validateKube?: KubeValidator } = {}): Promise<Driven> {
  const queue = [...steps];
  const screens: string[] = [];
  const run: Run = async (prompt, config) => {
    const r = await render(prompt as never, config as never);
    const screen = r.getScreen();
    const step = queue.shift();
    assert.ok(step, `no step left for prompt:\n${screen}`);
    assert.match(screen, step.match, `prompt out of order: expected ${step.match}, screen:\n${screen}`);
    if (step.bad) {
      r.events.type(step.bad.text);
      r.events.keypress('enter');
      await r.nextRender();
      assert.match(r.getScreen(), step.bad.error, `validation error not shown for ${JSON.stringify(step.bad.text)}:\n${r.getScreen()}`);
      for (let i = 0; i < step.bad.text.length; i++) r.events.keypress('backspace');
    }
    const c = config as { choices?: { value: string }[]; default?: string };
    if (c.choices && typeof step.answer === 'string') {
      const from = Math.max(0, c.choices.findIndex((x) => x.value === c.default));
      const to = c.choices.findIndex((x) => x.value === step.answer);
      assert.ok(to >= 0, `no choice ${String(step.answer)}`);
      for (let i = from; i < to; i++) r.events.keypress('down');
      for (let i = from; i > to; i--) r.events.keypress('up');
    } else if (typeof step.answer === 'boolean') {
      r.events.type(step.answer ? 'y' : 'n');
    } else if (typeof step.answer === 'string') {
      r.events.type(step.answer);
    }
    r.events.keypress('enter');
    const answer = await r.answer;
    // Everything the prompt ever wrote (raw, control sequences stripped): stricter than the last screen, and fast.
    screens.push(stripVTControlCharacters(await r.getFullOutput({ raw: true })));
    return answer as never;
  };
  const out: string[] = [];
  const err: string[] = [];
  const say = (t: string): void => { out.push(t); };
  const code = await runSetup(argv, {
    out: say,
    err: (t) => { err.push(t); },
    env: opts.env ?? {},
    ask: inquirerAsk(run, say),
    validateKube: opts.validateKube ?? validateKube,
  });
  return { code, screens: screens.join('\n'), out: out.join('\n'), err: err.join('\n'), left: queue.length };
}
