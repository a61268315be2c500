// Live update in the running daemon: it stands between the socket transport and the core (it is the
// transport's ConnectionHandler and hands everything else to the core), because a live update is
// about connections, not about the store:
//
//  - CONTROL `live-update ...` is answered here (./session.ts has the rules and texts); `-s` is a
//    delayed request, answered by the new program (its "OK" is in the state as unsent output) or,
//    if the switch is refused or fails, by this one.
//  - From `-f` on, a TRANSACTION_START of a connection without a transaction is held: it stays that
//    connection's unprocessed input (the transport stops serving the connection) and is served by
//    the new program, or here again when the session ends.
//  - At every loop turn's end a pending `-s` is checked against the open transactions
//    (startVerdict); when it may go, the switch happens right there, between turns, where every
//    connection's state is whole: group commit flushed, state written, exec (./handover.ts).
import { log } from "../common/log.ts";
import { XsError } from "../common/xs_error.ts";
import type { Client } from "../dispatch/client.ts";
import type { Core } from "../dispatch/core.ts";
import type { Message } from "../protocol/codec.ts";
import { MsgType } from "../protocol/wire.ts";
import { ITEM_LIMITS } from "../migration/format.ts";
import { FALLBACK_ENV, FALLBACK_SUFFIX, ownCommandLine } from "./fallback.ts";
import {
  type DaemonState,
  encodeState,
  execArgv,
  execKeeping,
  type HandoverConnection,
  writeDump,
} from "./handover.ts";
import {
  type FileCheck,
  LiveUpdateSession,
  parseLiveUpdateArgs,
  type PendingStart,
  startVerdict,
  type TransactionAge,
} from "./session.ts";

/** A socket connection's transport state, as handed over (the socket transport's SocketState). */
export interface HandedOverSocket {
  readonly kind: "socket";
  readonly fd: number;
  /** Bytes read and not yet handed to the core. */
  readonly input: Uint8Array;
  /** Bytes queued and not yet written: `partial` bytes finishing a message, then whole messages. */
  readonly output: Uint8Array;
  readonly partial: number;
}

/** What the controller needs of the socket transport (its SocketServer). */
export interface LiveUpdateTransport {
  readonly listenerFd: number;
  connections(): Iterable<
    { readonly client: Client; transportState(): HandedOverSocket | { readonly kind: "ring" } }
  >;
  /** Serve again the connections whose request was held. */
  resumeHeld(): void;
}

export interface LiveUpdateOptions {
  readonly core: Core;
  readonly rundir: string;
  /** This program's arguments (the new one gets them unless `-c` says otherwise). */
  readonly ownArgs: readonly string[];
  /** The environment for the new program (NOTIFY_SOCKET included: it notifies STOPPING later). */
  env(): Record<string, string>;
  /** Make every stored change durable now (group commit: no reply may wait for a sync we forget). */
  flushDurable(): void;
  /** Rings served (guests' and dom0's): not handed over yet, so refused while any is attached. */
  guests(): number;
  readonly checkFile: FileCheck;
  /**
   * What program the file is (`--help`, ./target.ts): null if it may be started, else the reply.
   * Asynchronous, so the loop serves on meanwhile; the `-f` reply waits for it. Absent: not probed.
   */
  readonly probe?: (file: string) => Promise<string | null>;
  /** exec keeping descriptors; returns only on failure, with the reason (tests inject a fake). */
  readonly exec?: typeof execKeeping;
  readonly now?: () => number;
}

const LIVE_UPDATE_PREFIX = "live-update\0";

/** Rings (guests', dom0's) are not handed over yet: refused rather than lost. */
function ringsRefusal(n: number): string {
  return `live update while domains' rings are served (${n}) is not supported by dxenstored yet.`;
}

export class LiveUpdateController {
  readonly session: LiveUpdateSession<Client>;
  private transport: LiveUpdateTransport | null = null;
  private readonly now: () => number;

  constructor(private readonly o: LiveUpdateOptions) {
    this.now = o.now ?? Date.now;
    this.session = new LiveUpdateSession<Client>((f) => this.checkFile(f), this.now);
  }

  /** The transport whose connections are handed over (set once it exists). */
  attach(t: LiveUpdateTransport): void {
    this.transport = t;
  }

  // --- the socket transport's ConnectionHandler ---

  open(sink: Parameters<Core["open"]>[0], label: string): Client {
    return this.o.core.open(sink, label);
  }

  message(c: Client, m: Message): void | boolean {
    if (m.type === MsgType.CONTROL && m.payload.startsWith(LIVE_UPDATE_PREFIX)) return this.control(c, m);
    // cxenstored's rule: no new transaction may start while a live update is under way. Not the session
    // owner's: holding its requests would hold its own `-s` behind them (its transaction is waited for).
    if (
      m.type === MsgType.TRANSACTION_START && this.session.active && c.txns.size === 0 &&
      this.session.session?.owner !== c
    ) return false;
    this.o.core.message(c, m);
  }

  close(c: Client): void {
    if (this.session.session?.owner === c) {
      log("info", `live update: ${c.label} closed its connection; session ended`);
      this.endSession();
    }
    this.o.core.close(c);
  }

  // --- the session ---

  private checkFile(file: string): string | null {
    const g = this.o.guests();
    return g > 0 ? ringsRefusal(g) : this.o.checkFile(file);
  }

  private control(c: Client, m: Message): void {
    // Access as for any CONTROL: refused ones go to the dispatcher, which answers the refusal.
    if (this.o.core.dispatcher.policy.checkCapability(c, "control") !== undefined) {
      this.o.core.message(c, m);
      return;
    }
    const args = m.payload.split("\0");
    if (args[args.length - 1] === "") args.pop();
    try {
      const req = parseLiveUpdateArgs(args.slice(1));
      const r = this.session.handle(c, req, m.reqId, m.txId);
      if (req.kind === "file" && r.kind === "reply" && r.text === "OK" && this.o.probe !== undefined) {
        this.probeThenReply(c, m, req.file);
        return;
      }
      if (r.kind === "reply") {
        if (!this.session.active) this.transport?.resumeHeld();
        c.sink.send(MsgType.CONTROL, m.reqId, m.txId, r.text + "\0");
      } else {
        const p = this.session.session!.start!;
        log("info", `live update: ${c.label} asks to switch (-t ${p.timeoutS}${p.force ? " -F" : ""})`);
      }
    } catch (e) {
      if (!(e instanceof XsError)) throw e;
      c.sink.send(MsgType.ERROR, m.reqId, m.txId, `${e.errno}\0`);
    }
  }

  /** `-f`'s last check, off the loop: the session has no program until it says yes. */
  private probeThenReply(c: Client, m: Message, file: string): void {
    const s = this.session.session!;
    s.file = null;
    this.o.probe!(file).then((problem) => {
      if (this.session.session !== s) return; // aborted (or the owner went) meanwhile
      if (problem === null) s.file = file;
      c.sink.send(MsgType.CONTROL, m.reqId, m.txId, (problem ?? "OK") + "\0");
    });
  }

  private endSession(): void {
    this.session.end();
    this.transport?.resumeHeld();
  }

  /** Answer the pending -s and end the session (refused or failed: this daemon serves on). */
  private fail(p: PendingStart, owner: Client, text: string): void {
    log("error", `live update failed: ${text.replace(/\n/g, "; ")}`);
    owner.sink.send(MsgType.CONTROL, p.reqId, p.txId, text + "\0");
    this.endSession();
  }

  /** Open transactions, per connection, as the -s rule sees them. */
  private transactionAges(): TransactionAge[] {
    const out: TransactionAge[] = [];
    for (const c of this.o.core.clients.values()) {
      const t = c.txns.oldestStart();
      if (t !== null) out.push({ domid: c.domid, oldestStart: t });
    }
    return out;
  }

  /** Called at every loop turn's end: switch if a pending -s may go now. */
  turnEnd(): void {
    const s = this.session.session;
    if (s === null || s.start === null || this.transport === null) return;
    const v = startVerdict(s.start, this.transactionAges(), this.now());
    if (v.kind === "wait") return;
    if (v.kind === "refuse") {
      this.fail(s.start, s.owner, v.text);
      return;
    }
    this.switchNow(s.owner, s.start, s.file!, s.cmdline, v.dropsTransactions);
  }

  private switchNow(
    owner: Client,
    p: PendingStart,
    file: string,
    cmdline: string | null,
    drops: boolean,
  ): void {
    const g = this.o.guests();
    if (g > 0) {
      this.fail(p, owner, ringsRefusal(g));
      return;
    }
    const t = this.transport!;
    let bytes: Uint8Array;
    let path: string;
    const conns: HandoverConnection[] = [];
    try {
      this.o.flushDurable();
      for (const sc of t.connections()) {
        const st = sc.transportState();
        if (st.kind !== "socket") continue;
        conns.push({
          clientId: sc.client.id,
          fd: st.fd,
          input: st.input,
          output: st.output,
          partial: st.partial,
        });
      }
      // A CONN record carries at most 65535 bytes of unprocessed input: a back-pressured client with a
      // full read pending must drain first. Wait for it up to the timeout, then say so.
      const big = conns.find((c) => c.input.length > ITEM_LIMITS.inputBytes);
      if (big !== undefined) {
        if (this.now() < p.since + p.timeoutS * 1000) return;
        this.fail(
          p,
          owner,
          `A connection holds ${big.input.length} bytes of unprocessed input (at most ` +
            `${ITEM_LIMITS.inputBytes} can be handed over): it does not read its replies.`,
        );
        return;
      }
      const core = this.o.core;
      const state: DaemonState = {
        listenerFd: t.listenerFd,
        connections: conns,
        watchesOf: (id) => core.watches.trie.watchesOf(id),
        root: core.db.root,
        specialPerms: core.db.specialPerms,
      };
      bytes = encodeState(state, { clientId: owner.id, reqId: p.reqId, txId: p.txId, text: "OK" });
      path = writeDump(this.o.rundir, bytes);
    } catch (e) {
      this.fail(p, owner, `Dump state error: ${(e as Error).message}`);
      return;
    }
    const argv = execArgv(file, this.o.ownArgs, cmdline);
    const fds = [t.listenerFd, ...conns.map((c) => c.fd)];
    // The way back if the new program cannot read the state (./fallback.ts).
    const env = this.o.env();
    try {
      Deno.linkSync(path, path + FALLBACK_SUFFIX);
      const askerFd = conns.find((c) => c.clientId === owner.id)?.fd ?? -1;
      env[FALLBACK_ENV] = JSON.stringify({
        file: Deno.execPath(),
        argv: ownCommandLine(),
        fd: askerFd,
        reqId: p.reqId,
        txId: p.txId,
      });
    } catch (e) {
      log("warn", `live update: no way back if the new program fails: ${(e as Error).message}`);
    }
    log(
      "info",
      `live update: ${bytes.length} bytes of state in ${path} (${conns.length} connections` +
        `${drops ? ", open transactions dropped (-F)" : ""}); exec ${JSON.stringify(argv)}`,
    );
    const why = (this.o.exec ?? execKeeping)(file, argv, env, fds);
    // Still here: the exec failed. Nothing was handed over; serve on.
    for (const f of [path, path + FALLBACK_SUFFIX]) {
      try {
        Deno.removeSync(f);
      } catch { /* gone */ }
    }
    this.fail(p, owner, `Error activating new binary.\n${why}`);
  }
}
