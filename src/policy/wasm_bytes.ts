// Reading and writing the WebAssembly binary format: LEB128 integers and growable byte buffers. Used by
// the metering rewriter (meter.ts), the generated Extism kernel (kernel.ts) and the tests' hand-built
// broken plugins. Every read is bounds-checked and throws WasmFormatError on malformed input: plugin
// files are untrusted.

export class WasmFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "WasmFormatError";
  }
}

/** A growable byte buffer with the encoders the wasm format needs. */
export class ByteWriter {
  private buf = new Uint8Array(256);
  length = 0;

  private ensure(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }

  byte(b: number): this {
    this.ensure(1);
    this.buf[this.length++] = b & 0xff;
    return this;
  }

  bytes(b: ArrayLike<number>): this {
    this.ensure(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
    return this;
  }

  /** Unsigned LEB128 (u32 range). */
  u32(v: number): this {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`u32 out of range: ${v}`);
    do {
      let b = v % 128;
      v = Math.floor(v / 128);
      if (v !== 0) b |= 0x80;
      this.byte(b);
    } while (v !== 0);
    return this;
  }

  /** Signed LEB128 of a bigint (i32/i64 constants). */
  sleb(v: bigint): this {
    for (;;) {
      const b = Number(v & 0x7fn);
      v >>= 7n;
      const done = (v === 0n && (b & 0x40) === 0) || (v === -1n && (b & 0x40) !== 0);
      this.byte(done ? b : b | 0x80);
      if (done) return this;
    }
  }

  /** A name: length-prefixed UTF-8. */
  name(s: string): this {
    const b = new TextEncoder().encode(s);
    return this.u32(b.length).bytes(b);
  }

  /** A section: id, size, contents. */
  section(id: number, contents: ByteWriter | Uint8Array): this {
    const b = contents instanceof ByteWriter ? contents.finish() : contents;
    return this.byte(id).u32(b.length).bytes(b);
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

/** A cursor over untrusted wasm bytes. */
export class ByteReader {
  pos: number;

  constructor(readonly buf: Uint8Array, start = 0, readonly end = buf.length) {
    this.pos = start;
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  byte(): number {
    if (this.pos >= this.end) throw new WasmFormatError("unexpected end of module");
    return this.buf[this.pos++];
  }

  skip(n: number): void {
    if (n < 0 || this.pos + n > this.end) throw new WasmFormatError("unexpected end of module");
    this.pos += n;
  }

  /** Unsigned LEB128, at most 5 bytes (u32). */
  u32(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 5; i++) {
      const b = this.byte();
      result += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) {
        if (result > 0xffffffff) throw new WasmFormatError("u32 out of range");
        return result;
      }
      mul *= 128;
    }
    throw new WasmFormatError("LEB128 too long");
  }

  /** Skip a signed LEB128 of at most `maxBytes` bytes (i32: 5, i64: 10, s33: 5). */
  skipLeb(maxBytes: number): void {
    for (let i = 0; i < maxBytes; i++) {
      if ((this.byte() & 0x80) === 0) return;
    }
    throw new WasmFormatError("LEB128 too long");
  }

  name(): string {
    const n = this.u32();
    const start = this.pos;
    this.skip(n);
    return new TextDecoder("utf-8", { fatal: true }).decode(this.buf.subarray(start, start + n));
  }
}
