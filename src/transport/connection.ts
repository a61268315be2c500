// The one contract every connection keeps, whichever transport carries it: a Unix-socket client
// (./socket_server.ts) or a domain's ring (./ring_server.ts). The core sees a connection only as the
// ReplySink it queues messages into and the Client it keeps per-connection state in (watches live in
// the watch manager under client.id, transactions in client.txns); the transport owns the rest —
// the unprocessed input, the unsent output and its release marks, and what names the peer (a file
// descriptor, or a domain's ring and event channel).
//
// transportState() exposes exactly that rest, so that a live update can carry every connection across
// an exec (the core's part is the Client's) and the loop can be measured per connection.
import type { Client, ReplySink } from "../dispatch/client.ts";
import type { RingMessage } from "../xen/ring.ts";
import type { OutputSink } from "./loop.ts";

export interface Connection extends ReplySink, OutputSink {
  /** The core's per-connection state (replaced when a ring connection is reset). */
  readonly client: Client;
  /** For logs: "socket#3", "dom5", "dom0-ring". */
  readonly label: string;
  /** The transport's state of this connection (copies: changing them changes nothing). */
  transportState(): TransportState;
}

/** A socket connection: its descriptor and the bytes on either side of the core. */
export interface SocketState {
  readonly kind: "socket";
  readonly fd: number;
  /** Bytes read and not yet handed to the core (at most one partial message, or a backlog). */
  readonly input: Uint8Array;
  /** Bytes queued and not yet written: `partial` bytes finishing a message, then whole messages. */
  readonly output: Uint8Array;
  readonly partial: number;
  /** How many of `output`'s bytes are released (the rest waits for group commit). */
  readonly releasedOutput: number;
}

/** A ring connection: the domain and channel it is on, and what is held between ring and core. */
export interface RingState {
  readonly kind: "ring";
  readonly domid: number;
  /** Our end of the event channel. */
  readonly localPort: number;
  readonly state: "connected" | "failed" | "closed";
  /** The bytes of a partially read request (header and payload so far). */
  readonly input: Uint8Array;
  /** Messages queued and not yet completely in the ring; the first may be partly written. */
  readonly output: readonly RingMessage[];
  /** Bytes of output[0] already in the ring. */
  readonly outputOffset: number;
  /** How many of `output`'s messages are released (the rest waits for group commit). */
  readonly releasedOutput: number;
}

export type TransportState = SocketState | RingState;
