// The way back when the new program cannot read the state (docs/live-update.md, DX_FALLBACK): the old
// program leaves a second name for the dump (state_dump.fallback) and, in the new program's
// environment, how to start itself again. A new dxenstored that cannot read or validate the dump execs
// the old program back with the same descriptors (still inherited: nothing was adopted yet) and a note
// of the failure; the old program adopts its own dump and answers the asking connection's `-s` with
// the failure instead of "OK". The clients saw a stall, nothing else.
//
// It rides in the environment, not in the stream, because it is needed exactly when the stream cannot
// be read. Not covered: a new program that dies before its first line runs (a broken installation:
// `-f` runs `<file> --help` first to catch that), or that fails after adopting.
import { encodeMessage } from "../protocol/codec.ts";
import { MsgType } from "../protocol/wire.ts";
import type { HostState } from "../migration/host_state.ts";

/** Set by the old program for the new one: how to go back. */
export const FALLBACK_ENV = "DXENSTORED_LU_FALLBACK";
/** Set by a new program that went back: why, and whom to tell. */
export const FAILED_ENV = "DXENSTORED_LU_FAILED";
/** The dump's second name, read by the old program when it comes back. */
export const FALLBACK_SUFFIX = ".fallback";

/** Who asked for the switch: the `-s` request to answer. */
export interface Asker {
  readonly fd: number;
  readonly reqId: number;
  readonly txId: number;
}

export interface Fallback extends Asker {
  /** The program to exec (this process's executable) and its whole argv (with -U). */
  readonly file: string;
  readonly argv: readonly string[];
}

export interface Failure extends Asker {
  readonly reason: string;
}

/** This process's own command line, to start it again: /proc/self/cmdline, with -U. */
export function ownCommandLine(): string[] {
  const argv = Deno.readTextFileSync("/proc/self/cmdline").split("\0");
  if (argv[argv.length - 1] === "") argv.pop();
  if (!argv.includes("-U")) argv.push("-U");
  return argv;
}

function isAsker(x: Record<string, unknown>): boolean {
  return Number.isInteger(x.fd) && Number.isInteger(x.reqId) && Number.isInteger(x.txId);
}

/** Parse FALLBACK_ENV; null if absent or malformed. */
export function parseFallback(text: string | undefined): Fallback | null {
  if (text === undefined) return null;
  try {
    const x = JSON.parse(text);
    const ok = typeof x === "object" && x !== null && isAsker(x) && typeof x.file === "string" &&
      Array.isArray(x.argv) && x.argv.every((a: unknown) => typeof a === "string");
    return ok ? x as Fallback : null;
  } catch {
    return null;
  }
}

/** Parse FAILED_ENV; null if absent or malformed. */
export function parseFailure(text: string | undefined): Failure | null {
  if (text === undefined) return null;
  try {
    const x = JSON.parse(text);
    return typeof x === "object" && x !== null && isAsker(x) && typeof x.reason === "string"
      ? x as Failure
      : null;
  } catch {
    return null;
  }
}

/**
 * The old program back: the asker's "OK" (the last message of its unsent output, as the old program
 * wrote it) becomes the failure. Returns the state unchanged if the asker or its OK is not there.
 */
export function answerFailure(host: HostState, f: Failure): HostState {
  const ok = encodeMessage(MsgType.CONTROL, f.reqId, f.txId, "OK\0");
  const connections = host.connections.map((c) => {
    if (c.endpoint.kind !== "socket" || c.endpoint.fd !== f.fd) return c;
    const out = c.output;
    const tail = out.subarray(out.length - ok.length);
    if (out.length < ok.length || !tail.every((b, i) => b === ok[i])) return c;
    const reply = encodeMessage(MsgType.CONTROL, f.reqId, f.txId, `live-update failed: ${f.reason}\0`);
    const output = new Uint8Array(out.length - ok.length + reply.length);
    output.set(out.subarray(0, out.length - ok.length));
    output.set(reply, out.length - ok.length);
    const partialOutput = out.length - ok.length === 0 ? 0 : c.partialOutput;
    return { ...c, output, partialOutput };
  });
  return { ...host, connections };
}
