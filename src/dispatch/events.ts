// WATCH_EVENT packets: where an event's payload is built, and where the wire's payload limit is
// applied to it. An event is `<path>\0<token>\0`; with a long token (up to ~4 KiB, what a WATCH
// request can carry) and a long event path below the watched one, it can exceed XENSTORE_PAYLOAD_MAX
// (the XSA-324 class). Such an event is not sent — as cxenstored, which drops it ("Don't try to send
// over-long events") — and a client could not receive it anyway (libxenstore refuses the packet). It is
// counted, and logged once per watch: a watcher sees nothing, so the log is where an operator learns
// that one of its events went missing. Later events of the same watch and connection are unaffected.
import { log } from "../common/log.ts";
import { PAYLOAD_MAX } from "../protocol/wire.ts";

export interface EventStats {
  /** Events not sent because their payload would exceed PAYLOAD_MAX. */
  oversized: number;
}

export class EventBuilder {
  readonly stats: EventStats = { oversized: 0 };
  /** Watches whose oversized event was logged (weak: forgetting a watch forgets this too). */
  private readonly logged = new WeakSet<object>();

  /**
   * The WATCH_EVENT payload for `path` and `token`, or null if it would exceed PAYLOAD_MAX: then it is
   * counted, and logged if it is the first for `watch` (any object that identifies the watch).
   */
  payload(label: string, watch: object, path: string, token: string): string | null {
    const size = path.length + token.length + 2;
    if (size <= PAYLOAD_MAX) return `${path}\0${token}\0`;
    this.stats.oversized++;
    if (!this.logged.has(watch)) {
      this.logged.add(watch);
      log(
        "warn",
        `${label}: watch event of ${size} bytes (path ${JSON.stringify(path.slice(0, 64))}${
          path.length > 64 ? "…" : ""
        }, token of ${token.length} bytes) exceeds ${PAYLOAD_MAX}: not sent, as cxenstored; later oversized ` +
          `events of this watch are only counted (${this.stats.oversized} so far)`,
      );
    }
    return null;
  }
}
