// The guest's side of the simulated Xen: what a guest kernel has — its xenstore ring page mapped, and
// an event channel to the daemon. A process may run as several domains (the benchmark runs hundreds)
// through one SimEvtchn, as one /dev/xen/evtchn handle serves many ports.
import * as libc from "../../../ffi/libc.ts";
import { RingPage } from "../ring.ts";
import type { MappedRing } from "../platform.ts";
import {
  daemonChannel,
  decodeEvent,
  EVENT_SIZE,
  guestsDir,
  readNumber,
  receiverPath,
  ringPath,
  storePortPath,
  writeAtomic,
} from "./layout.ts";
import { mapRingFile } from "./platform.ts";

let channelCounter = 0;

/**
 * A guest process's event-channel endpoint: a FIFO the daemon writes its notifications into (for any
 * number of domains), and the daemon's FIFO, opened once, that this process's notifications go to.
 */
export class SimEvtchn {
  /** The FIFO read end (pollable). */
  readonly fd: number;
  readonly path: string;
  private readonly daemonPath: string;
  /** The daemon's FIFO, open for writing (-1: not open yet, or the daemon went away). */
  private toDaemon = -1;
  private readonly buf = new Uint8Array(EVENT_SIZE * 512);
  private readonly pollSet: libc.PollSet;
  private closed = false;

  constructor(readonly dir: string) {
    Deno.mkdirSync(guestsDir(dir), { recursive: true });
    this.path = `${guestsDir(dir)}/${Deno.pid}-${channelCounter++}.evtchn`;
    libc.mkfifo(this.path);
    // Read-write: the daemon can open it for writing at any time, and we never read end-of-file.
    this.fd = libc.open(this.path, libc.O_RDWR | libc.O_NONBLOCK);
    this.daemonPath = daemonChannel(dir);
    this.pollSet = new libc.PollSet([this.fd]);
  }

  /** Forget queued events (the caller is about to look at its rings anyway); returns how many. */
  drain(): number {
    let n = 0;
    for (;;) {
      const r = libc.read(this.fd, this.buf);
      if (r <= 0) return n;
      n += Math.floor(r / EVENT_SIZE);
      if (r < this.buf.length) return n; // a short read: nothing more is queued
    }
  }

  /** Wait until an event is queued or `timeoutMs` passes, letting the event loop run meanwhile. */
  async wait(timeoutMs: number): Promise<boolean> {
    const r = await libc.pollReadableAsync([this.fd], timeoutMs);
    if (r) this.drain();
    return r;
  }

  /** The same, blocking the JS thread (lower latency: for dedicated load-generator processes). */
  waitSync(timeoutMs: number): boolean {
    const r = this.pollSet.wait(timeoutMs);
    if (r) this.drain();
    return r;
  }

  /** Which (domid, port) channels fired; consumes the queued events. */
  take(): Array<{ domid: number; port: number }> {
    const out: Array<{ domid: number; port: number }> = [];
    for (;;) {
      const r = libc.read(this.fd, this.buf);
      if (r <= 0) return out;
      for (let off = 0; off + EVENT_SIZE <= r; off += EVENT_SIZE) out.push(decodeEvent(this.buf, off));
      if (r < this.buf.length) return out;
    }
  }

  /**
   * Write one event record into the daemon's FIFO: bytes written, or -errno (-EAGAIN: its FIFO is
   * full; -ENXIO or -ENOENT: no daemon is running).
   */
  sendToDaemon(event: Uint8Array): number {
    for (let attempt = 0; attempt < 2; attempt++) {
      if (this.toDaemon < 0) {
        this.toDaemon = libc.tryOpen(this.daemonPath, libc.O_WRONLY | libc.O_NONBLOCK);
        if (this.toDaemon < 0) {
          const e = this.toDaemon;
          this.toDaemon = -1;
          return e;
        }
      }
      const n = libc.write(this.toDaemon, event);
      if (n !== -libc.EPIPE) return n;
      // The daemon we had open is gone (a new one makes a new FIFO): open the path again.
      libc.close(this.toDaemon);
      this.toDaemon = -1;
    }
    return -libc.EPIPE;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    libc.close(this.fd);
    if (this.toDaemon >= 0) libc.close(this.toDaemon);
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
  private closed = false;
  /** Notifications that could not be delivered (no daemon running, or its FIFO stayed full). */
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
    this.event = new Uint8Array(EVENT_SIZE);
    const dv = new DataView(this.event.buffer);
    dv.setUint32(0, domid, true);
    dv.setUint32(4, port, true);
  }

  notify(): void {
    for (let attempt = 0; attempt < 50; attempt++) {
      const n = this.evtchn.sendToDaemon(this.event);
      if (n > 0) return;
      if (n !== -libc.EAGAIN) break; // no daemon running: the event is lost, as with no bound port
      libc.pollReadable([], 1); // the daemon's FIFO is full: give it a moment
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
