// A blocking socket client (dom0's toolstack) for the benchmarks: raw XenStore wire messages over a
// Unix socket through libc, with no event loop in the way (bench/guests.ts, bench/memory.ts).
import * as libc from "../ffi/libc.ts";

export class SocketClient {
  private readonly fd: number;
  private buf = new Uint8Array(65536);
  private have = 0;

  constructor(path: string) {
    this.fd = libc.connectUnix(path);
  }

  send(type: number, payload: string, txId = 0): void {
    const b = new Uint8Array(16 + payload.length);
    const dv = new DataView(b.buffer);
    dv.setUint32(0, type, true);
    dv.setUint32(8, txId, true);
    dv.setUint32(12, payload.length, true);
    for (let i = 0; i < payload.length; i++) b[16 + i] = payload.charCodeAt(i);
    let off = 0;
    while (off < b.length) {
      const n = libc.write(this.fd, b.subarray(off));
      if (n <= 0) throw new Error("socket write failed");
      off += n;
    }
  }

  /** The next message: [type, payload]. */
  recv(): [number, string] {
    for (;;) {
      if (this.have >= 16) {
        const dv = new DataView(this.buf.buffer);
        const len = dv.getUint32(12, true);
        if (this.have >= 16 + len) {
          const type = dv.getUint32(0, true);
          let s = "";
          for (let i = 0; i < len; i++) s += String.fromCharCode(this.buf[16 + i]);
          this.buf.copyWithin(0, 16 + len, this.have);
          this.have -= 16 + len;
          return [type, s];
        }
      }
      const n = libc.read(this.fd, this.buf.subarray(this.have));
      if (n <= 0) throw new Error("socket closed");
      this.have += n;
    }
  }

  /** One request, its reply (watch events in between are skipped). */
  call(type: number, payload: string, txId = 0): string {
    this.send(type, payload, txId);
    for (;;) {
      const [t, p] = this.recv();
      if (t === 15) continue;
      if (t === 16) throw new Error(`type ${type} ${JSON.stringify(payload.slice(0, 60))}: ${p}`);
      return p;
    }
  }

  /** Many requests pipelined, then all replies. */
  batch(reqs: Array<[number, string]>): void {
    for (const [t, p] of reqs) this.send(t, p);
    let n = 0;
    while (n < reqs.length) {
      const [t, p] = this.recv();
      if (t === 15) continue;
      if (t === 16) throw new Error(`batch: ${p}`);
      n++;
    }
  }

  close(): void {
    libc.close(this.fd);
  }
}
