#!/usr/bin/env python3
"""Run a command with its stderr (and stdout) connected to journald the way systemd connects a
service's: a stream on /run/systemd/journal/stdout opened with IDENTIFIER in its header, and
JOURNAL_STREAM=<dev>:<ino> of that stream in the environment.

    journal_exec.py IDENTIFIER COMMAND [ARGS...]
"""
import os
import socket
import sys

ident, argv = sys.argv[1], sys.argv[2:]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect("/run/systemd/journal/stdout")
s.shutdown(socket.SHUT_RD)
# identifier, unit id, priority, level prefix, forward to syslog, kmsg, console (journald's stream header)
s.sendall(f"{ident}\n\n6\n1\n0\n0\n0\n".encode())
fd = s.detach()
st = os.fstat(fd)
os.dup2(fd, 1)
os.dup2(fd, 2)
os.close(fd)
os.environ["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
os.execvp(argv[0], argv)
