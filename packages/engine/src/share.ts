// A share of a pool's new requests sent to one failover level: what the failover engine decides and the routing
// state carries to the data plane. Here, below both (ADR 0003), so neither borrows it from the other.
export interface Share {
  readonly level: number;
  readonly percent: number;
  /**
   * Send to this level's backends even though none is known to serve: the pool's routing has not changed yet
   * (delayed strategy inside its delay, automatic failover disabled). Per-request rescue still saves requests
   * that fail there.
   */
  readonly evenIfDown?: true;
}
