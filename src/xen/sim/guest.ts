// The guest's side of the simulated Xen: what a guest kernel has — its xenstore ring page mapped, and
// an event channel to the daemon. A process may run as several domains (the benchmark runs hundreds)
// through one SimEvtchn socket, as one /dev/xen/evtchn handle serves many ports.
import * as libc from "../../../ffi/libc.ts";
import { RingPage } from "../ring.ts";
import type { MappedRing } from "../platform.ts";
import {
  daemonSocket,
  decodeEvent,
  guestsDir,
  readNumber,
  receiverPath,
  ringPath,
  storePortPath,
  writeAtomic,
} from "./layout.ts";
import { mapRingFile } from "./platform.ts";

let socketCounter = 0;

/** A guest process's event-channel endpoint: one datagram socket, any number of domains. */
export class SimEvtchn {
  readonly fd: number;
  readonly path: string;
  private readonly buf = new Uint8Array(64);
  private closed = false;

  constructor(readonly dir: string) {
    Deno.mkdirSync(guestsDir(dir), { recursive: true });
    this.path = `${guestsDir(dir)}/${Deno.pid}-${socketCounter++}.evtchn`;
    this.fd = libc.bindDatagram(this.path);
  }

  /** Forget queued events (the caller is about to look at its rings anyway). */
  drain(): number {
    let n = 0;
    while (libc.recv(this.fd, this.buf) >= 0) n++;
    return n;
  }

  /** Wait until an event is queued or `timeoutMs` passes, letting the event loop run meanwhile. */
  async wait(timeoutMs: number): Promise<boolean> {
    const r = await libc.pollReadableAsync([this.fd], timeoutMs);
    this.drain();
    return r;
  }

  /** The same, blocking the JS thread (lower latency: for dedicated load-generator processes). */
  waitSync(timeoutMs: number): boolean {
    const r = libc.pollReadable([this.fd], timeoutMs);
    this.drain();
    return r;
  }

  /** Which (domid, port) channels fired; consumes the queued events. */
  take(): Array<{ domid: number; port: number }> {
    const out: Array<{ domid: number; port: number }> = [];
    for (;;) {
      const n = libc.recv(this.fd, this.buf);
      if (n < 0) return out;
      const ev = decodeEvent(this.buf, n);
      if (ev !== null) out.push(ev);
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    libc.close(this.fd);
    libc.unlink(this.path);
  }
}

/** Running as domain `domid` of a simulated Xen (a GuestTransport for src/client/guest.ts). */
export class SimGuest {
  readonly page: RingPage;
  readonly port: number;
  private readonly ring: MappedRing;
  private readonly ownsEvtchn: boolean;
  private readonly event: Uint8Array;
  private readonly daemon: string;
  private closed = false;
  /** Notifications the daemon's socket refused (it is not running, or its queue was full). */
  undelivered = 0;

  /**
   * Attach to an existing domain: map its ring and direct its events to `evtchn` (a new endpoint
   * if none is given). A previous process running as this domain stops receiving its events.
   */
  readonly evtchn: SimEvtchn;

  constructor(readonly dir: string, readonly domid: number, evtchn?: SimEvtchn) {
    this.ownsEvtchn = evtchn === undefined;
    this.evtchn = evtchn ?? new SimEvtchn(dir);
    const port = readNumber(storePortPath(dir, domid));
    if (port === null) throw new Error(`simulated domain ${domid} does not exist in ${dir}`);
    this.port = port;
    this.ring = mapRingFile(ringPath(dir, domid));
    this.page = new RingPage(this.ring.page);
    writeAtomic(receiverPath(dir, domid), this.evtchn.path);
    this.daemon = daemonSocket(dir);
    this.event = new Uint8Array(8);
    const dv = new DataView(this.event.buffer);
    dv.setUint32(0, domid, true);
    dv.setUint32(4, port, true);
  }

  notify(): void {
    for (let attempt = 0; attempt < 50; attempt++) {
      // Sent from the endpoint's own socket: one descriptor per process, however many domains.
      const n = libc.sendTo(this.evtchn.fd, this.daemon, this.event);
      if (n > 0) return;
      if (n !== -libc.EAGAIN) break; // no daemon listening: the event is lost, as with no bound port
      libc.pollReadable([], 1); // the daemon's queue is full: give it a moment
    }
    this.undelivered++;
  }

  async wait(timeoutMs: number): Promise<void> {
    await this.evtchn.wait(timeoutMs);
  }

  waitSync(timeoutMs: number): void {
    this.evtchn.waitSync(timeoutMs);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.ring.unmap();
    if (this.ownsEvtchn) this.evtchn.close();
  }
}
