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
import { cx417Verdict, requestsIn } from "../migration/cx417.ts";
import { writeStream } from "../migration/writer.ts";
import { FALLBACK_ENV, FALLBACK_SUFFIX, ownCommandLine } from "./fallback.ts";
import {
  buildStream,
  type DaemonState,
  execArgv,
  execKeeping,
  type HandoverConnection,
  type HandoverRing,
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
import type { TargetCheck, TargetProgram } from "./target.ts";
import { featureRecord, quotaRecord } from "./dx_records.ts";
import { policyRecord } from "./dx_policy.ts";
import type { PolicyState } from "../policy/state.ts";

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
  /** Serve every whole request already read, past back-pressure (held ones stay held). */
  serveBuffered?(): void;
}

/** The new program's arguments when no `-c` names them (cxenstored's: ../cli/handover_args.ts). */
export interface SuccessorArgs {
  readonly args: readonly string[];
  /** Our options the new program does not understand, left out (logged). */
  readonly dropped: readonly string[];
}

export interface LiveUpdateOptions {
  readonly core: Core;
  readonly rundir: string;
  /** The socket's path: cxenstored learns it from XENSTORED_PATH (and a later switch back from it). */
  readonly socketPath?: string;
  /** This program's arguments (the new one gets them unless `-c` says otherwise). */
  readonly ownArgs: readonly string[];
  /** cxenstored's arguments from ours (without -c); absent: ours unchanged. */
  readonly cxenstoredArgs?: (ownArgs: readonly string[]) => SuccessorArgs;
  /** The environment for the new program (NOTIFY_SOCKET included: it notifies STOPPING later). */
  env(): Record<string, string>;
  /** Make every stored change durable now (group commit: no reply may wait for a sync we forget). */
  flushDurable(): void;
  /** Rings served (guests' and dom0's). */
  guests(): number;
  /**
   * The rings and the event-channel descriptor, for a platform that can hand them over (real Xen,
   * the simulated one); absent: a live update is refused while any ring is served.
   */
  readonly rings?: RingHandoverSource;
  readonly checkFile: FileCheck;
  /**
   * What program the file is (`--help`, ./target.ts): the program to hand over to, or the reply.
   * Asynchronous, so the loop serves on meanwhile; the `-f` reply waits for it. Absent: not probed,
   * taken for dxenstored.
   */
  readonly probe?: (file: string) => Promise<TargetCheck>;
  /** Would the hypervisor report this domain to cxenstored? Default: dom0 and introduced guests. */
  readonly domainExists?: (domid: number) => boolean;
  /** The policy plugins' state (DX_POLICY); throws if a plugin cannot save it. Absent: not carried. */
  policyState?(): PolicyState;
  /** exec keeping descriptors; returns only on failure, with the reason (tests inject a fake). */
  readonly exec?: typeof execKeeping;
  readonly now?: () => number;
}

/** Where the rings come from (the ring transport and the platform). */
export interface RingHandoverSource {
  readonly eventFd: number;
  rings(): HandoverRing[];
  /**
   * Just before the exec: release what the new program binds again on the inherited descriptor
   * (VIRQ_DOM_EXC); returns the undo for a failed exec.
   */
  releaseForExec(): () => void;
  /**
   * cxenstored can adopt these rings too: the channels and pages are the hypervisor's (real Xen), not
   * the simulated Xen's files, which only dxenstored reads.
   */
  readonly cxenstoredCanAdopt: boolean;
}

const LIVE_UPDATE_PREFIX = "live-update\0";

/** Rings that cannot be handed over are refused rather than lost. */
function ringsRefusal(n: number, to: string): string {
  return `live update while domains' rings are served (${n}) is not supported by dxenstored ${to}.`;
}

export class LiveUpdateController {
  readonly session: LiveUpdateSession<Client>;
  private transport: LiveUpdateTransport | null = null;
  private readonly now: () => number;
  /** The program each session's `-f` named (dxenstored unless the probe said cxenstored). */
  private readonly programs = new WeakMap<object, TargetProgram>();

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
    return g > 0 && this.o.rings === undefined
      ? ringsRefusal(g, "on this platform yet")
      : this.o.checkFile(file);
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
    this.o.probe!(file).then((check) => {
      if (this.session.session !== s) return; // aborted (or the owner went) meanwhile
      if (check.ok) {
        s.file = file;
        this.programs.set(s, check.program);
      }
      c.sink.send(MsgType.CONTROL, m.reqId, m.txId, (check.ok ? "OK" : check.text) + "\0");
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
    const program = this.programs.get(s) ?? "dxenstored";
    this.switchNow(s.owner, s.start, { file: s.file!, program, cmdline: s.cmdline }, v.dropsTransactions);
  }

  private switchNow(owner: Client, p: PendingStart, target: Successor, drops: boolean): void {
    const { file, program } = target;
    const g = this.o.guests();
    const rs = this.o.rings;
    if (g > 0 && (rs === undefined || (program === "cxenstored" && !rs.cxenstoredCanAdopt))) {
      this.fail(
        p,
        owner,
        ringsRefusal(g, program === "cxenstored" ? "to cxenstored yet" : "on this platform yet"),
      );
      return;
    }
    const t = this.transport!;
    let bytes: Uint8Array;
    let path: string;
    const conns: HandoverConnection[] = [];
    let rings: HandoverRing[] = [];
    try {
      // cxenstored 4.17 restores one request per connection: serve the ones read already.
      if (program === "cxenstored") t.serveBuffered?.();
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
      // Requests behind a held TRANSACTION_START cannot be served now: wait for the timeout, then the
      // verdict below refuses (cxenstored would make one request of them).
      if (
        program === "cxenstored" && conns.some((c) => requestsIn(c.input) > 1) &&
        this.now() < p.since + p.timeoutS * 1000
      ) return;
      const core = this.o.core;
      rings = g > 0 ? this.o.rings!.rings() : [];
      const state: DaemonState = {
        listenerFd: t.listenerFd,
        evtchnFd: rings.length > 0 ? this.o.rings!.eventFd : -1,
        rings,
        dxRecords: [
          quotaRecord(core.quotas.settings.runtime()),
          featureRecord(core.domains.guestFeatures(), core.domains.presets.entries()),
          // cxenstored has no plugins: a plugin failing to save must not refuse a switch to it.
          program === "dxenstored" && this.o.policyState !== undefined
            ? policyRecord(this.o.policyState())
            : null,
        ].filter((r) => r !== null),
        connections: conns,
        watchesOf: (id) => core.watches.trie.watchesOf(id),
        root: core.db.root,
        specialPerms: core.db.specialPerms,
      };
      const stream = buildStream(state, { clientId: owner.id, reqId: p.reqId, txId: p.txId, text: "OK" });
      if (program === "cxenstored") {
        // cxenstored trusts the file: a stream it cannot restore would leave no xenstored at all.
        const v = cx417Verdict(stream, this.o.domainExists ?? ((d) => this.domainExists(d)));
        if (v.fatal.length > 0) {
          this.fail(p, owner, `cannot hand over to cxenstored 4.17: ${v.fatal.join("; ")}`);
          return;
        }
        if (v.lost.length > 0) log("warn", `live update: cxenstored 4.17 will drop ${v.lost.join(", ")}`);
      }
      bytes = writeStream(stream);
      path = writeDump(this.o.rundir, bytes);
    } catch (e) {
      this.fail(p, owner, `Dump state error: ${(e as Error).message}`);
      return;
    }
    const argv = this.successorArgv(target);
    // The event channels live on in their descriptor (the rings' bindings with it).
    const fds = [
      t.listenerFd,
      ...conns.map((c) => c.fd),
      ...(rings.length > 0 ? [this.o.rings!.eventFd] : []),
    ];
    const env = this.o.env();
    // cxenstored finds the dump in XENSTORED_RUNDIR and its socket's name in XENSTORED_PATH (it passes
    // both on to its own successor, which is how a later switch back finds them).
    if (program === "cxenstored") {
      env.XENSTORED_RUNDIR = this.o.rundir;
      if (this.o.socketPath !== undefined) env.XENSTORED_PATH = this.o.socketPath;
    }
    // The way back if a new dxenstored cannot read the state (./fallback.ts). cxenstored has none (its
    // stream was checked above); the variable must not reach it: it would pass it on to a later one.
    if (program === "dxenstored") this.prepareWayBack(env, path, owner, conns, p);
    log(
      "info",
      `live update: ${bytes.length} bytes of state in ${path} (${conns.length} connections, ` +
        `${rings.length} rings` +
        `${drops ? ", open transactions dropped (-F)" : ""}); exec ${program} ${JSON.stringify(argv)}`,
    );
    const rebind = rings.length > 0 ? this.o.rings!.releaseForExec() : null;
    const why = (this.o.exec ?? execKeeping)(file, argv, env, fds);
    // Still here: the exec failed. Nothing was handed over; serve on.
    rebind?.();
    for (const f of [path, path + FALLBACK_SUFFIX]) {
      try {
        Deno.removeSync(f);
      } catch { /* gone */ }
    }
    this.fail(p, owner, `Error activating new binary.\n${why}`);
  }

  /** dom0 and the guests this daemon serves: the domains cxenstored would find on the hypervisor. */
  private domainExists(domid: number): boolean {
    return domid === 0 || this.o.core.domains.isIntroduced(domid);
  }

  /** [file, arguments, "-U"]: `-c`'s command line, else ours (cut down to cxenstored's for it). */
  private successorArgv(t: Successor): string[] {
    if (t.cmdline !== null || t.program === "dxenstored" || this.o.cxenstoredArgs === undefined) {
      return execArgv(t.file, this.o.ownArgs, t.cmdline);
    }
    const cx = this.o.cxenstoredArgs(this.o.ownArgs);
    if (cx.dropped.length > 0) {
      log("warn", `live update: cxenstored does not take dxenstored's ${cx.dropped.join(" ")} (left out)`);
    }
    return execArgv(t.file, cx.args, null);
  }

  private prepareWayBack(
    env: Record<string, string>,
    path: string,
    owner: Client,
    conns: readonly HandoverConnection[],
    p: PendingStart,
  ): void {
    try {
      // A new program that died after reading the dump may have left the second name behind.
      Deno.removeSync(path + FALLBACK_SUFFIX);
    } catch { /* absent */ }
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
  }
}

/** The program a session switches to. */
interface Successor {
  readonly file: string;
  readonly program: TargetProgram;
  readonly cmdline: string | null;
}
