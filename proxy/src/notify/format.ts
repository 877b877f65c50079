// Notice -> each channel's message: the log line, the email, and the JSON bodies of Slack (Block Kit), Discord
// (embeds) and the generic webhook. Pure: the same notice always gives the same bytes, so the HMAC signature
// and the tests can rely on them. Examples of every format: docs/notifications.md.
import { formatDuration } from '@veloflux/config/duration';
import type { DownBackend, Notice } from './incident.ts';

const iso = (ms: number): string => new Date(ms).toISOString();

/** Whole seconds are enough for people ("1m5s"); under a second, milliseconds. */
export function humanDuration(ms: number): string {
  return ms < 1000 ? `${Math.max(0, Math.round(ms))}ms` : formatDuration(Math.round(ms / 1000) * 1000);
}

/** One line that says what happened; the subject of the email, the header of a chat message. */
export function title(n: Notice): string {
  switch (n.kind) {
    case 'failover_activated': return `Failover activated: pool ${n.pool}, level ${n.from} -> ${n.to}`;
    case 'level_changed': return `Failover level changed: pool ${n.pool}, level ${n.from} -> ${n.to}`;
    case 'failover_recovered': return `Failover recovered: pool ${n.pool} back on level ${n.to} after ${humanDuration(n.durationMs ?? 0)}`;
    case 'backend_down': return `Backend down: ${n.backend?.address} (pool ${n.pool}, level ${n.backend?.level})`;
    case 'backend_up': return `Backend up: ${n.backend?.address} (pool ${n.pool}, level ${n.backend?.level})`;
    case 'drill': return `[TEST] Failover drill: pool ${n.pool} (test only, no failover)`;
    case 'flapping': return `Failover flapping: pool ${n.pool}, ${n.flapping?.failovers} failovers; failback held for ${humanDuration(n.flapping?.holdMs ?? 0)}`;
    case 'flapping_ended': return `Failover flapping ended: pool ${n.pool}`;
    case 'failback_awaiting_approval': return `Awaiting failback approval: pool ${n.pool}, level ${n.from} -> ${n.to}`;
  }
}

/** A few sentences: what happened, why, and for a recovery, which activation it closes. */
export function description(n: Notice): string {
  switch (n.kind) {
    case 'failover_activated':
      return `Failover activated for pool "${n.pool}": new requests moved from level ${n.from} to level ${n.to}. Reason: ${n.reason}.`;
    case 'level_changed':
      return `Failover level changed for pool "${n.pool}": new requests moved from level ${n.from} to level ${n.to}. Reason: ${n.reason}.`;
    case 'failover_recovered': {
      const i = n.incident;
      const opened = i ? ` It resolves incident ${i.id}, activated at ${iso(i.startedAt)} (level ${i.from} -> ${i.to}: ${i.reason}).` : '';
      return `Failover recovered for pool "${n.pool}": new requests are back on level ${n.to} (from level ${n.from}) after ${humanDuration(n.durationMs ?? 0)}. Reason: ${n.reason}.${opened}`;
    }
    case 'backend_down':
      return `Backend ${n.backend?.address} of pool "${n.pool}" (level ${n.backend?.level}) is down: ${n.backend?.error ?? 'unknown error'} (seen by ${n.backend?.by === 'passive' ? 'real traffic' : n.backend?.by === 'outlier' ? 'outlier detection on real traffic: ejected' : 'health checks'}).`;
    case 'backend_up':
      return `Backend ${n.backend?.address} of pool "${n.pool}" (level ${n.backend?.level}) is up again.`;
    case 'flapping':
      return `Pool "${n.pool}" is flapping: ${n.flapping?.failovers} failovers within ${humanDuration(n.flapping?.windowMs ?? 0)}. Traffic fails back only after the earlier level has been healthy without a break for ${humanDuration(n.flapping?.holdMs ?? 0)} (doubled at each further failover). Reason: ${n.reason}.`;
    case 'flapping_ended':
      return `Pool "${n.pool}" is no longer flapping after ${humanDuration(n.durationMs ?? 0)} (${n.flapping?.failovers} failovers in the episode). Reason: ${n.reason}.`;
    case 'failback_awaiting_approval':
      return `Pool "${n.pool}" is awaiting failback approval: level ${n.to} is healthy again, traffic stays on level ${n.from} until POST /api/v1/failover/failback?pool=${n.pool} (or the FailoverPool's spec.failback.approve). Reason: ${n.reason}.`;
    case 'drill':
      return `THIS IS A TEST. A failover drill was run for pool "${n.pool}"; no traffic was moved by this notification. ${n.summary ?? ''}`.trim();
  }
}

function downLine(d: DownBackend): string {
  return `${d.backend} (level ${d.level}): ${d.error}, since ${iso(d.since)}`;
}

/** Backends down when the incident opened (activation) or now (everything else). */
function relevantDown(n: Notice): readonly DownBackend[] {
  return n.kind === 'failover_activated' && n.incident ? n.incident.backendsDown : n.backendsDown;
}

// --- log -----------------------------------------------------------------------------------------------------

/** The log channel's line: the fields of the notice, and a message that starts with "failover notification". */
export function logLine(n: Notice): { obj: Record<string, unknown>; msg: string } {
  const obj: Record<string, unknown> = {
    pool: n.pool,
    event: n.kind,
    notice: n.id,
    ...(n.incident ? { incident: n.incident.id } : {}),
    ...(n.from !== undefined ? { from: n.from, to: n.to } : {}),
    ...(n.reason !== undefined ? { reason: n.reason } : {}),
    ...(n.durationMs !== undefined ? { durationMs: n.durationMs } : {}),
    ...(n.backend ? { backend: n.backend.address, failover_level: n.backend.level } : {}),
    backendsDown: relevantDown(n).map((d) => d.backend),
    ...(n.suppressed > 0 ? { suppressed: n.suppressed } : {}),
    ...(n.test ? { test: true } : {}),
  };
  return { obj, msg: `failover notification${n.test ? ' (TEST)' : ''}: ${title(n)}` };
}

// --- email ---------------------------------------------------------------------------------------------------

export interface EmailMessage {
  readonly subject: string;
  readonly text: string;
  readonly messageId: string;
  /** Replies thread under the incident's activation: Message-ID of the activation = <incident id@veloflux>. */
  readonly inReplyTo: string | undefined;
  readonly headers: Readonly<Record<string, string>>;
}

export function email(n: Notice): EmailMessage {
  const lines = [description(n), ''];
  lines.push(`Pool: ${n.pool}`);
  if (n.from !== undefined) lines.push(`Levels: ${n.from} -> ${n.to}`);
  if (n.durationMs !== undefined) lines.push(`Duration: ${humanDuration(n.durationMs)}`);
  if (n.incident) lines.push(`Incident: ${n.incident.id} (${n.kind === 'failover_recovered' ? 'resolved' : 'open'}, started ${iso(n.incident.startedAt)})`);
  const down = relevantDown(n);
  lines.push(`Backends down${n.kind === 'failover_activated' ? ' at activation' : ''}: ${down.length === 0 ? 'none' : ''}`);
  for (const d of down) lines.push(`  - ${downLine(d)}`);
  if (n.suppressed > 0) lines.push(`Held back by the rate limit since the last notification: ${n.suppressed}`);
  lines.push(`Time: ${iso(n.at)}`, '', `-- VeloFlux (notice ${n.id})`);
  const root = n.incident ? `<${n.incident.id}@veloflux>` : undefined;
  const own = n.kind === 'failover_activated' && root ? root : `<${n.id}@veloflux>`;
  return {
    subject: `[VeloFlux${n.test ? ' TEST' : ''}] ${title(n)}`,
    text: `${lines.join('\n')}\n`,
    messageId: own,
    inReplyTo: root !== undefined && root !== own ? root : undefined,
    headers: {
      'X-VeloFlux-Event': n.kind,
      ...(n.incident ? { 'X-VeloFlux-Incident': n.incident.id } : {}),
      ...(n.test ? { 'X-VeloFlux-Test': 'true' } : {}),
    },
  };
}

// --- webhooks ------------------------------------------------------------------------------------------------

type Tone = 'bad' | 'good' | 'test';
function tone(n: Notice): Tone {
  if (n.test) return 'test';
  return n.kind === 'failover_recovered' || n.kind === 'backend_up' || n.kind === 'flapping_ended' ? 'good' : 'bad';
}

const clip = (s: string, max: number): string => (s.length <= max ? s : `${s.slice(0, max - 1)}…`);

/** Slack mrkdwn treats &, < and > as markup. */
const slackEscape = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function facts(n: Notice): Array<[string, string]> {
  const out: Array<[string, string]> = [['Pool', n.pool]];
  if (n.from !== undefined) out.push(['Levels', `${n.from} -> ${n.to}`]);
  if (n.durationMs !== undefined) out.push(['Duration', humanDuration(n.durationMs)]);
  if (n.incident) out.push(['Incident', `${n.incident.id} (${n.kind === 'failover_recovered' ? 'resolved' : 'open'})`]);
  const down = relevantDown(n);
  out.push([n.kind === 'failover_activated' ? 'Backends down at activation' : 'Backends down', down.length === 0 ? 'none' : down.map((d) => `${d.backend} (level ${d.level}): ${d.error}`).join('\n')]);
  if (n.suppressed > 0) out.push(['Held back by rate limit', String(n.suppressed)]);
  return out;
}

/** Slack incoming webhook: `text` (notifications, fallback) and Block Kit blocks. */
export function slack(n: Notice): Record<string, unknown> {
  const t = title(n);
  return {
    text: slackEscape(t),
    blocks: [
      { type: 'header', text: { type: 'plain_text', text: clip(t, 150) } },
      { type: 'section', text: { type: 'mrkdwn', text: clip(slackEscape(description(n)), 3000) } },
      { type: 'section', fields: facts(n).slice(0, 10).map(([k, v]) => ({ type: 'mrkdwn', text: clip(`*${k}*\n${slackEscape(v)}`, 2000) })) },
      { type: 'context', elements: [{ type: 'mrkdwn', text: `VeloFlux${n.test ? ' drill (TEST)' : ''} · ${iso(n.at)} · notice ${n.id}` }] },
    ],
  };
}

const DISCORD_COLOR: Record<Tone, number> = { bad: 0xd93f0b, good: 0x2eb67d, test: 0x3b82f6 };

/** Discord webhook: one embed; mentions disabled so a pool or backend name cannot ping anyone. */
export function discord(n: Notice): Record<string, unknown> {
  return {
    username: 'VeloFlux',
    ...(n.test ? { content: '**TEST** — failover drill, no action needed' } : {}),
    allowed_mentions: { parse: [] },
    embeds: [
      {
        title: clip(title(n), 256),
        description: clip(description(n), 4096),
        color: DISCORD_COLOR[tone(n)],
        timestamp: iso(n.at),
        fields: facts(n).slice(0, 25).map(([name, value]) => ({ name, value: clip(value, 1024), inline: !value.includes('\n') })),
        footer: { text: clip(`VeloFlux · notice ${n.id}`, 2048) },
      },
    ],
  };
}

/** The generic body: every field of the notice, snake_case like the config. Version 1; fields are only added. */
export function generic(n: Notice): Record<string, unknown> {
  const i = n.incident;
  return {
    source: 'veloflux',
    version: 1,
    id: n.id,
    event: n.kind,
    test: n.test,
    pool: n.pool,
    at: iso(n.at),
    title: title(n),
    text: description(n),
    incident: i ? { id: i.id, status: n.kind === 'failover_recovered' ? 'resolved' : 'open', started_at: iso(i.startedAt), from_level: i.from, to_level: i.to, reason: i.reason } : null,
    ...(n.from !== undefined ? { from_level: n.from, to_level: n.to } : {}),
    ...(n.reason !== undefined ? { reason: n.reason } : {}),
    ...(n.durationMs !== undefined ? { duration_ms: n.durationMs } : {}),
    ...(n.backend ? { backend: { address: n.backend.address, level: n.backend.level, ...(n.backend.error !== undefined ? { error: n.backend.error } : {}), ...(n.backend.by ? { detected_by: n.backend.by } : {}) } } : {}),
    backends_down: relevantDown(n).map((d) => ({ address: d.backend, level: d.level, error: d.error, since: iso(d.since) })),
    suppressed: n.suppressed,
    ...(n.summary !== undefined ? { summary: n.summary } : {}),
    ...(n.flapping ? { flapping: { failovers: n.flapping.failovers, ...(n.flapping.holdMs !== undefined ? { hold_ms: n.flapping.holdMs, window_ms: n.flapping.windowMs } : {}) } } : {}),
  };
}

export type WebhookFormat = 'slack' | 'discord' | 'generic';

export function webhookBody(format: WebhookFormat, n: Notice): string {
  return JSON.stringify(format === 'slack' ? slack(n) : format === 'discord' ? discord(n) : generic(n));
}
