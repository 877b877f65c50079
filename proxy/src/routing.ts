// What the control side (health + failover decisions) tells the data plane: per pool, the shares of new requests
// by level and which backends serve. Plain data, so it crosses to worker processes as one IPC message.
import type { Share } from '@veloflux/engine/share';

export interface PoolRouting {
  readonly shares: readonly Share[];
  /** Ids of the backends that serve (not down); weight 0 is applied by the data plane from the config. */
  readonly serving: readonly string[];
}

export interface RoutingState {
  /** Increases with every change, so a worker can ignore a stale message. */
  readonly seq: number;
  /** Version hash of the config these ids belong to. */
  readonly configVersion: string;
  readonly pools: Readonly<Record<string, PoolRouting>>;
}

/** Passive signal from real traffic: a backend refused, reset or timed out a request. */
export interface PassiveFailure {
  readonly backendId: string;
  readonly error: string;
}
