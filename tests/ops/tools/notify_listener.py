#!/usr/bin/env python3
"""A stand-in for systemd's notification socket, for tests/ops/daemon_test.ts.

    notify_listener.py SOCKET_PATH XENSTORE_SOCKET TIMEOUT_S [UNTIL]

Binds a Unix datagram socket with SO_PASSCRED, prints "listening", then prints one JSON line per
datagram: the text, the sender's pid (from SCM_CREDENTIALS, as systemd checks it) and whether the
xenstore socket accepted a connection at the moment the datagram was read. Exits after a datagram
with the line UNTIL (default READY=1) or the timeout.
"""
import json
import os
import socket
import struct
import sys

path, xs_socket, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
until = sys.argv[4] if len(sys.argv) > 4 else "READY=1"
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind(path)
s.settimeout(timeout)
print("listening", flush=True)
while True:
    try:
        data, anc, _flags, _addr = s.recvmsg(4096, socket.CMSG_SPACE(12))
    except socket.timeout:
        print(json.dumps({"timeout": True}), flush=True)
        sys.exit(1)
    pid = None
    for level, typ, cdata in anc:
        if level == socket.SOL_SOCKET and typ == socket.SCM_CREDENTIALS:
            pid, _uid, _gid = struct.unpack("iII", cdata[:12])
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        c.connect(xs_socket)
        connectable = True
    except OSError:
        connectable = False
    finally:
        c.close()
    text = data.decode("utf-8", "replace")
    print(json.dumps({"text": text, "pid": pid, "connectable": connectable}), flush=True)
    if until in text.split("\n"):
        break
os.unlink(path)
