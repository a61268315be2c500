#!/usr/bin/python3
"""pyxs (Debian's python3-pyxs 0.4.2) against a XenStore socket, for tests/ops/clients_test.ts.

    pyxs_client.py SOCKET

Exercises the client library's whole socket API: write/read/list/exists/mkdir/delete, permissions,
walk, domain path, is_domain_introduced, transactions (commit and rollback, a real conflict), and a
watch with its events, unwatch included. pyxs checks that every reply's op and tx_id match its
request and raises UnexpectedPacket on a reply nobody waits for. Prints "ok <step>" lines, "done".
"""
import sys
import threading

from pyxs import Client
from pyxs.exceptions import PyXSError

path = sys.argv[1]


def ok(step):
    print("ok", step, flush=True)


with Client(unix_socket_path=path) as c:
    c.write(b"/pyxs/a", b"1")
    assert c.read(b"/pyxs/a") == b"1"
    c.mkdir(b"/pyxs/dir")
    assert sorted(c.list(b"/pyxs")) == [b"a", b"dir"]
    assert c.exists(b"/pyxs/dir") and not c.exists(b"/pyxs/none")
    assert c.read(b"/pyxs/none", default=b"dflt") == b"dflt"
    ok("read/write/list/exists")
    c.set_perms(b"/pyxs/a", [b"n0", b"r5"])
    assert c.get_perms(b"/pyxs/a") == [b"n0", b"r5"]
    ok("perms")
    assert [p for p, _, _ in c.walk(b"/pyxs")] == [b"/pyxs", b"/pyxs/a", b"/pyxs/dir"]
    ok("walk")
    assert c.get_domain_path(3) == b"/local/domain/3"
    assert c.is_domain_introduced(0) is True
    ok("domain path, introduced")
    try:
        c.read(b"/pyxs/missing")
        raise AssertionError("ENOENT expected")
    except PyXSError:
        pass
    ok("errors")
    c.delete(b"/pyxs/dir")
    assert c.list(b"/pyxs") == [b"a"]
    ok("delete")

    # Transactions: a commit, a rollback, and a real conflict (EAGAIN -> commit() returns False).
    c.transaction()
    c.write(b"/pyxs/t", b"in-tx")
    assert c.commit() is True
    assert c.read(b"/pyxs/t") == b"in-tx"
    c.transaction()
    c.write(b"/pyxs/t", b"rolled back")
    c.rollback()
    assert c.read(b"/pyxs/t") == b"in-tx"
    with Client(unix_socket_path=path) as other:
        c.transaction()
        assert c.read(b"/pyxs/t") == b"in-tx"
        c.write(b"/pyxs/t", b"mine")
        other.write(b"/pyxs/t", b"theirs")
        assert c.commit() is False, "a conflicting write makes the commit fail"
    assert c.read(b"/pyxs/t") == b"theirs"
    ok("transactions")

    # Watches: the initial event, an event per change, nothing after unwatch.
    m = c.monitor()
    m.watch(b"/pyxs/w", b"tok")
    events = m.wait()
    first = next(events)
    assert first == (b"/pyxs/w", b"tok"), first
    with Client(unix_socket_path=path) as writer:
        writer.write(b"/pyxs/w/x", b"1")
    ev = next(events)
    assert ev == (b"/pyxs/w/x", b"tok"), ev
    m.unwatch(b"/pyxs/w", b"tok")
    c.write(b"/pyxs/w/y", b"2")
    assert c.read(b"/pyxs/w/y") == b"2"
    got = []
    t = threading.Thread(target=lambda: got.append(next(m.wait(unwatched=True))), daemon=True)
    t.start()
    t.join(0.5)
    assert not got, "no event after UNWATCH: %r" % got
    ok("watches")
print("done", flush=True)
