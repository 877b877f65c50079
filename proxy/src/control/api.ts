// What the admin API, the metrics and the notifiers see of the control core (ADR 0003): the controller's
// read side and manual failover, its events, the drills' options and the domain errors they map to answers.
// They import this module only (npm run lint), so the core can change behind it.
import type { Controller } from './controller.ts';

export type ControlApi = Pick<Controller, 'config' | 'version' | 'ready' | 'notReadyReason' | 'proxyId' | 'status' | 'activate' | 'deactivate' | 'failback' | 'applyDecision' | 'on' | 'off'>;
export type { Clock } from './clock.ts';
export { systemClock } from './clock.ts';
export { DecisionRefused, NothingToApproveError, UnknownPoolError } from './controller.ts';
export { DrillError } from './drill.ts';
export type { DrillOptions } from './drill.ts';
export type { ProxyEvent, TrafficReport } from './events.ts';
