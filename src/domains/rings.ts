// What the domain registry needs of the ring transport (src/transport/ring_server.ts implements it):
// attach a mapped ring as a connection, and later re-bind, reset, re-target or detach it. The
// registry decides when (INTRODUCE, RELEASE, death, restart); the transport serves the ring. Defined
// here so that the registry imports nothing of the transport above it.

/** A mapped ring to serve. */
export interface RingSpec {
  readonly domid: number;
  /** Dom0's own ring: a privileged connection, like a socket's. */
  readonly privileged: boolean;
  /** The ring page (mapped by the registry, which unmaps it after detaching). */
  readonly page: Uint8Array;
  /** Our end of the bound event channel. */
  readonly localPort: number;
  /** Feature bits the domain may use; the ring's bits are advertised in the page. */
  readonly features: number;
  readonly target: number | null;
  /** Start from an empty ring (INTRODUCE), or keep what is in it (restart, dom0's ring). */
  readonly fresh: boolean;
}

/** One attached ring, as the registry holds it. */
export interface RingHandle {
  /** The core's client id of the current connection (a new one after each reset). */
  clientId(): number;
  /** Signals now come on `localPort` (a re-INTRODUCE re-bound the channel). */
  rebind(localPort: number): void;
  /** Drop the connection's watches, transactions and buffers; a new client starts on an empty ring. */
  reset(why: string): void;
  setTarget(target: number | null): void;
  /** The ring's state and buffers (tests, metrics). */
  info(): RingInfo;
  /** Stop serving: the client goes with its watches and transactions (the ring stays mapped). */
  close(): void;
  /** Live update: the partial input and unsent output the previous program left (RangeError if bad). */
  adoptState(input: Uint8Array, output: Uint8Array, partial: number): void;
}

export interface RingPort {
  /** Serve a ring; whatever it already holds is served at the next loop turn. */
  attach(spec: RingSpec): RingHandle;
}

export interface RingInfo {
  readonly state: "connected" | "failed" | "closed";
  /** The core's client id of the current connection (a new one after each reconnection). */
  readonly clientId: number;
  readonly queuedBytes: number;
  readonly queuedEvents: number;
  readonly droppedEvents: number;
  readonly requests: number;
  readonly features: number;
  readonly target: number | null;
}
