#!/usr/bin/env python3
"""Relays stdin/stdout to a TCP server on 127.0.0.1: `relay.py PORT`.

QEMU runs it once per guest connection as a guestfwd command
(guestfwd=tcp:ADDR:PORT-cmd:scripts/relay.py HOSTPORT), which lets a guest
reach a test server on the host's loopback and nothing else (the netdev has
restrict=on)."""
import os
import selectors
import socket
import sys

port = int(sys.argv[1])
s = socket.create_connection(("127.0.0.1", port))
sel = selectors.DefaultSelector()
sel.register(0, selectors.EVENT_READ, "in")
sel.register(s, selectors.EVENT_READ, "sock")
open_in = True
while True:
    for key, _ in sel.select():
        if key.data == "in":
            data = os.read(0, 65536)
            if not data:
                sel.unregister(0)
                s.shutdown(socket.SHUT_WR)
                open_in = False
            else:
                s.sendall(data)
        else:
            data = s.recv(65536)
            if not data:
                sys.exit(0)
            os.write(1, data)
