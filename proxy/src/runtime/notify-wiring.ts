// Wiring of the notifier (proxy/src/notify/): it hears every state event of the controller. Kept apart so the
// core never imports a subscriber (npm run lint checks it).
import type { Config } from '@veloflux/config/types';
import { createNotifier } from '../notify/index.ts';
import type { DeliveryCounter, Notifier } from '../notify/index.ts';
import type { Clock } from '../control/clock.ts';
import type { Controller } from '../control/controller.ts';
import type { Logger } from './log.ts';

export type { Notifier };

export function attachNotifier(controller: Controller, config: Config, log: Logger, opts: { counter?: DeliveryCounter; clock?: Clock } = {}): Notifier {
  const notifier = createNotifier({ notification: config.notification, log, ...opts });
  controller.on('event', (e) => notifier.publish(e));
  return notifier;
}
