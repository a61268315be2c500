// The store as one request sees it: the live database, or a transaction's working tree. Node
// operations go through a View so the same code serves both; a transaction's view records what the
// client observed and logs writes, the database's view commits each write at once.
import type { Database } from "../store/database.ts";
import type { Perms } from "../store/perms.ts";
import type { Node } from "../store/tree.ts";
import type { Recheck, Transaction } from "../txn/transaction.ts";

export interface View {
  readonly root: Node;
  /** Record that the client saw these aspects (OBS_* bits) of `path`. */
  observe(path: string, aspects: number): void;
  write(path: string, value: string | null, permsForNew: (p: Perms) => Perms, recheck: Recheck): void;
  remove(path: string, recheck: Recheck): void;
  setPerms(path: string, perms: Perms, old: Perms, recheck: Recheck): void;
}

export class DatabaseView implements View {
  constructor(private readonly db: Database, private readonly domid: number) {}
  get root(): Node {
    return this.db.root;
  }
  observe(): void {}
  write(path: string, value: string | null, permsForNew: (p: Perms) => Perms): void {
    this.db.write(path, value, permsForNew, this.domid);
  }
  remove(path: string): void {
    this.db.remove(path, this.domid);
  }
  setPerms(path: string, perms: Perms, old: Perms): void {
    this.db.setPerms(path, perms, old, this.domid);
  }
}

export class TransactionView implements View {
  constructor(private readonly tx: Transaction, private readonly nextGen: () => number) {}
  get root(): Node {
    return this.tx.root;
  }
  observe(path: string, aspects: number): void {
    this.tx.observe(path, aspects);
  }
  write(path: string, value: string | null, permsForNew: (p: Perms) => Perms, recheck: Recheck): void {
    this.tx.write({ kind: "write", path, value, permsForNew, recheck }, this.nextGen());
  }
  remove(path: string, recheck: Recheck): void {
    this.tx.remove({ kind: "rm", path, recheck }, this.nextGen());
  }
  setPerms(path: string, perms: Perms, _old: Perms, recheck: Recheck): void {
    this.tx.setPerms({ kind: "perms", path, perms, recheck }, this.nextGen());
  }
}
