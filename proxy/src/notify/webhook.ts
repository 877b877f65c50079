// The webhook channel: POST of a JSON body (Slack, Discord or generic format) with undici, on an Agent of its own
// so a hung receiver holds notification sockets, never the data plane's.
//
// Headers on every POST:
//   Content-Type: application/json
//   X-VeloFlux-Event: failover_activated | level_changed | failover_recovered | backend_down | backend_up | drill
//   X-VeloFlux-Delivery: the notice id (the same on every retry of one notice: receivers can drop repeats)
//   X-VeloFlux-Timestamp: unix seconds when this attempt was sent
//   X-VeloFlux-Signature: sha256=<hex HMAC-SHA256 of the exact body bytes, keyed with `secret`>   (only with a secret)
// The signature covers the body only, so it is the same on every retry; the body holds the notice's own time
// (`at` in the generic format) for receivers that want to refuse old notices. Verification: docs/notifications.md.
//
// Status: 2xx is delivered. 408, 429 and 5xx are retried (429/503 honour Retry-After in seconds); any other
// status will not change on a retry and ends the delivery. Redirects are not followed.
import { createHmac } from 'node:crypto';
import { Agent, request } from 'undici';
import { DEFAULTS } from '@veloflux/config/defaults';
import type { ChannelConfig } from '@veloflux/config/types';
import { DeliveryError, codeOf } from './deliver.ts';
import type { Transport } from './deliver.ts';
import { webhookBody } from './format.ts';
import type { Notice } from './incident.ts';

export type WebhookChannel = Extract<ChannelConfig, { type: 'webhook' }>;

export const SIGNATURE_HEADER = 'x-veloflux-signature';
export const TIMESTAMP_HEADER = 'x-veloflux-timestamp';

export function sign(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

export function webhookTransport(name: string, c: WebhookChannel, now: () => number): Transport {
  const timeoutMs = c.timeout ?? DEFAULTS.notification.webhookTimeoutMs;
  const agent = new Agent({ connections: 2, connectTimeout: timeoutMs, headersTimeout: timeoutMs, bodyTimeout: timeoutMs, keepAliveTimeout: 4000 });
  return {
    name,
    timeoutMs,
    async send(n: Notice, signal: AbortSignal): Promise<void> {
      const body = webhookBody(c.format, n);
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        'user-agent': 'veloflux-notify/1',
        'x-veloflux-event': n.kind,
        'x-veloflux-delivery': n.id,
        [TIMESTAMP_HEADER]: String(Math.floor(now() / 1000)),
        ...(c.secret !== undefined ? { [SIGNATURE_HEADER]: sign(c.secret, body) } : {}),
      };
      let status: number;
      let retryAfter: string | string[] | undefined;
      try {
        const res = await request(c.url, { method: 'POST', body, headers, signal, dispatcher: agent });
        status = res.statusCode;
        retryAfter = res.headers['retry-after'];
        await res.body.dump({ limit: 64 * 1024, signal });
      } catch (err) {
        // undici's messages can name the URL (and a Slack or Discord URL is the credential): the code only.
        throw new DeliveryError(codeOf(err) ?? 'request failed', true);
      }
      if (status >= 200 && status < 300) return;
      const seconds = Number(Array.isArray(retryAfter) ? retryAfter[0] : retryAfter);
      const retryable = status === 408 || status === 429 || status >= 500;
      throw new DeliveryError(`HTTP ${status}`, retryable, Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : undefined);
    },
    close() {
      void agent.destroy().catch(() => {});
    },
  };
}
