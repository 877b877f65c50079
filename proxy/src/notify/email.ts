// The email channel: nodemailer over SMTP, one connection per message (notifications are rare; a pool of idle
// connections would only go stale). Security per the `tls` field:
//   starttls  plain connect, then STARTTLS is required (a server that does not offer it fails: EAUTH-free, ETLS)
//   tls       TLS from the first byte (port 465)
//   none      no encryption, STARTTLS ignored even if offered (a relay on the same host)
// The password is handed to nodemailer only; nodemailer's own logger stays off (it would print the AUTH exchange),
// and errors are reduced to their code and SMTP status.
import { readFile } from 'node:fs/promises';
import { rootCertificates } from 'node:tls';
import { DEFAULTS } from '@veloflux/config/defaults';
import type { ChannelConfig } from '@veloflux/config/types';
import { DeliveryError, codeOf } from './deliver.ts';
import type { Transport } from './deliver.ts';
import { email } from './format.ts';
import type { Notice } from './incident.ts';

export type EmailChannel = Extract<ChannelConfig, { type: 'email' }>;

/** The sender: `from`, else smtp_user when it is an address, else veloflux@localhost. */
export function sender(c: EmailChannel): string {
  return c.from ?? (c.smtp_user?.includes('@') ? c.smtp_user : 'veloflux@localhost');
}

export function emailTransport(name: string, c: EmailChannel): Transport {
  const timeoutMs = c.timeout ?? DEFAULTS.notification.emailTimeoutMs;
  const mode = c.tls ?? (c.smtp_port === 465 ? 'tls' : 'starttls');
  return {
    name,
    timeoutMs,
    async send(n: Notice, signal: AbortSignal): Promise<void> {
      let ca: string[] | undefined;
      if (c.ca_file !== undefined) {
        try {
          ca = [...rootCertificates, await readFile(c.ca_file, 'utf8')];
        } catch (err) {
          throw new DeliveryError(`cannot read ca_file (${codeOf(err) ?? 'error'})`, false);
        }
      }
      // nodemailer costs ~24 MB of memory once loaded: only proxies that send email pay for it.
      const { createTransport } = await import('nodemailer');
      const transporter = createTransport({
        host: c.smtp_server,
        port: c.smtp_port,
        secure: mode === 'tls',
        requireTLS: mode === 'starttls',
        ignoreTLS: mode === 'none',
        ...(c.smtp_user !== undefined ? { auth: { user: c.smtp_user, pass: c.smtp_password ?? '' } } : {}),
        connectionTimeout: timeoutMs,
        greetingTimeout: timeoutMs,
        socketTimeout: timeoutMs,
        dnsTimeout: timeoutMs,
        socketCloseTimeout: 0,
        ...(ca ? { tls: { ca } } : {}),
        logger: false,
        debug: false,
        disableFileAccess: true,
        disableUrlAccess: true,
      });
      const m = email(n);
      try {
        await transporter.sendMail({
          from: sender(c),
          to: c.recipients,
          subject: m.subject,
          text: m.text,
          messageId: m.messageId,
          ...(m.inReplyTo ? { inReplyTo: m.inReplyTo, references: [m.inReplyTo] } : {}),
          headers: { ...m.headers },
          signal,
        });
      } catch (err) {
        throw smtpError(err);
      } finally {
        transporter.close();
      }
    },
    close() {},
  };
}

/** nodemailer error -> code and SMTP status only. A 5xx answer or a rejected login will not pass on a retry. */
function smtpError(err: unknown): DeliveryError {
  const code = codeOf(err) ?? 'ESMTP';
  const status = (err as { responseCode?: unknown }).responseCode;
  const smtp = typeof status === 'number' ? status : undefined;
  const permanent = code === 'EAUTH' || code === 'ECONFIG' || code === 'ETLS' || (smtp !== undefined && smtp >= 500);
  return new DeliveryError(smtp === undefined ? code : `${code} (SMTP ${smtp})`, !permanent);
}
