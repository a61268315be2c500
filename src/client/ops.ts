// The node operations, the same outside and inside a transaction: XenStore and Transaction both are
// StoreOps over their own `exec` (which sends with tx_id 0 or the transaction's id).
import { MsgType } from "../protocol/wire.ts";
import { hasErrno } from "./errors.ts";
import {
  formatPerm,
  fromWire,
  joinNul,
  parseDirectoryPart,
  parsePermsReply,
  type Perm,
  splitNul,
  toWire,
  wireBytes,
} from "./payload.ts";

/** DIRECTORY_PART walks restart at most this often when the directory keeps changing under them. */
const MAX_DIRECTORY_RESTARTS = 16;

export abstract class StoreOps {
  /** Send one request in this context; the reply payload, or an XsError for an ERROR reply. */
  protected abstract exec(type: MsgType, payload: string, what: string): Promise<string>;

  /** The value of `path` as UTF-8 text. */
  async read(path: string): Promise<string> {
    return fromWire(await this.exec(MsgType.READ, `${toWire(path)}\0`, `READ ${path}`));
  }

  /** The value of `path` as bytes. */
  async readBytes(path: string): Promise<Uint8Array> {
    return wireBytes(await this.exec(MsgType.READ, `${toWire(path)}\0`, `READ ${path}`));
  }

  /** Write `value` (text as UTF-8, or bytes); missing parents are created. */
  async write(path: string, value: string | Uint8Array): Promise<void> {
    await this.exec(MsgType.WRITE, `${toWire(path)}\0${toWire(value)}`, `WRITE ${path}`);
  }

  /** Create `path` (and missing parents) with an empty value; an existing node is left as it is. */
  async mkdir(path: string): Promise<void> {
    await this.exec(MsgType.MKDIR, `${toWire(path)}\0`, `MKDIR ${path}`);
  }

  /** Remove `path` and everything below it. */
  async rm(path: string): Promise<void> {
    await this.exec(MsgType.RM, `${toWire(path)}\0`, `RM ${path}`);
  }

  /**
   * The names of `path`'s children. A list longer than one reply (E2BIG) is read in parts with
   * DIRECTORY_PART, as libxenstore does, restarting if the directory changes meanwhile.
   */
  async ls(path: string): Promise<string[]> {
    try {
      return splitNul(await this.exec(MsgType.DIRECTORY, `${toWire(path)}\0`, `DIRECTORY ${path}`)).map(
        fromWire,
      );
    } catch (e) {
      if (!hasErrno(e, "E2BIG")) throw e;
    }
    for (let restart = 0; restart < MAX_DIRECTORY_RESTARTS; restart++) {
      const names: string[] = [];
      let offset = 0;
      let gen: string | null = null;
      for (;;) {
        const part = parseDirectoryPart(
          await this.exec(MsgType.DIRECTORY_PART, `${toWire(path)}\0${offset}\0`, `DIRECTORY_PART ${path}`),
        );
        if (gen !== null && part.gen !== gen) break; // changed under us: start again
        gen = part.gen;
        names.push(...part.names.map(fromWire));
        offset += part.bytes;
        if (part.end) return names;
      }
    }
    throw new Error(
      `DIRECTORY_PART ${path}: the directory kept changing (${MAX_DIRECTORY_RESTARTS} restarts)`,
    );
  }

  /** Whether `path` exists (a READ that does not answer ENOENT; other errors are thrown). */
  async exists(path: string): Promise<boolean> {
    try {
      await this.exec(MsgType.READ, `${toWire(path)}\0`, `READ ${path}`);
      return true;
    } catch (e) {
      if (hasErrno(e, "ENOENT")) return false;
      throw e;
    }
  }

  /** The permission list of `path`: entry 0 is the owner (and everyone's default access). */
  async getPerms(path: string): Promise<Perm[]> {
    return parsePermsReply(await this.exec(MsgType.GET_PERMS, `${toWire(path)}\0`, `GET_PERMS ${path}`));
  }

  /** Replace the permission list of `path` (entries as {domid, access} or strings like "b0", "r5"). */
  async setPerms(path: string, perms: readonly (Perm | string)[]): Promise<void> {
    if (perms.length === 0) throw new RangeError("a permission list needs at least the owner entry");
    await this.exec(
      MsgType.SET_PERMS,
      `${toWire(path)}\0${joinNul(perms.map(formatPerm))}`,
      `SET_PERMS ${path}`,
    );
  }
}
