// The transports' last line of "never a packet over PAYLOAD_MAX, on any transport" (docs/protocol.md).
// Kept apart from codec.ts, which the client library (src/client, also an npm package) shares and which
// must stay free of the daemon's logging.
import { log } from "../common/log.ts";
import { MsgType, PAYLOAD_MAX } from "./wire.ts";

/**
 * The core bounds every reply (E2BIG, src/dispatch/dispatcher.ts) and every watch event (not sent,
 * src/dispatch/events.ts) before it reaches a transport, so getting here is a bug: it is logged, an
 * oversized watch event is dropped (null) and any other message is replaced by an E2BIG error, so the
 * client still gets its one reply and the stream stays in step.
 */
export function replaceOversized(label: string, type: number, len: number): string | null {
  log(
    "error",
    `${label}: internal error: refusing to send ${
      MsgType[type] ?? `type ${type}`
    } of ${len} bytes (limit ${PAYLOAD_MAX})`,
  );
  return type === MsgType.WATCH_EVENT ? null : "E2BIG\0";
}
