// Extension points of the dispatcher: daemon control (CONTROL) and a request observer, which the
// operator-facing side of the daemon (src/cli/operations.ts, src/observe) plugs in. The control
// handler returns the reply payload or throws XsError; without one CONTROL answers ENOSYS.
import type { Message } from "../protocol/codec.ts";
import type { Client } from "./client.ts";

/** CONTROL <command> <args...>: daemon control and introspection (xenstore-control). */
export interface ControlHandler {
  handle(c: Client, args: readonly string[]): string;
}

/**
 * Sees every connection and every reply once it is queued (src/observe: metrics, refusal log, access
 * log). Called synchronously on the request path, so implementations must be cheap and must not throw.
 */
export interface RequestObserver {
  opened(c: Client): void;
  closed(c: Client): void;
  /**
   * `failure` is what the dispatcher caught behind an ERROR reply (an XsError, or a bug) or the
   * Refusal a READ returned (errno and detail as an XsError's), else null;
   * `ms` is how long handling took (not counting a wait for durability); `at`, when it ended
   * (performance.now()'s clock, already read: the observer need not read it again).
   */
  replied(
    c: Client,
    m: Message,
    replyType: number,
    reply: string,
    failure: unknown,
    ms: number,
    at?: number,
  ): void;
  /** A watch event was queued for `c`. */
  watchEvent(c: Client, path: string, token: string): void;
}
