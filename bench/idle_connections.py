#!/usr/bin/env python3
"""Opens N MySQL connections (handshake and login only, nothing else) and holds them.

Standard library only: a stock driver would send statements at connect time, and an idle client
is what is measured here. Prints `ready N` once all are logged in, then holds them until stdin
closes. Usage: idle_connections.py HOST PORT USER PASSWORD N
"""
import hashlib
import socket
import struct
import sys


def read_packet(sock):
    header = b""
    while len(header) < 4:
        chunk = sock.recv(4 - len(header))
        if not chunk:
            raise ConnectionError("closed during handshake")
        header += chunk
    length = header[0] | header[1] << 8 | header[2] << 16
    body = b""
    while len(body) < length:
        chunk = sock.recv(length - len(body))
        if not chunk:
            raise ConnectionError("closed during handshake")
        body += chunk
    return header[3], body


def native_token(password, scramble):
    stage1 = hashlib.sha1(password.encode()).digest()
    stage2 = hashlib.sha1(stage1).digest()
    mix = hashlib.sha1(scramble + stage2).digest()
    return bytes(a ^ b for a, b in zip(stage1, mix))


def login(host, port, user, password):
    sock = socket.create_connection((host, port))
    seq, greeting = read_packet(sock)
    if greeting[0] == 0xFF:
        raise ConnectionError(greeting[3:].decode(errors="replace"))
    version_end = greeting.index(b"\0", 1)
    pos = version_end + 1 + 4
    scramble = greeting[pos:pos + 8]
    pos += 8 + 1 + 2 + 1 + 2 + 2 + 1 + 10
    scramble += greeting[pos:pos + 12]
    caps = 0x00000001 | 0x00000200 | 0x00002000 | 0x00008000 | 0x00080000
    token = native_token(password, scramble)
    body = struct.pack("<IIB23x", caps, 1 << 24, 45)
    body += user.encode() + b"\0" + bytes([len(token)]) + token + b"mysql_native_password\0"
    sock.sendall(struct.pack("<I", len(body))[:3] + bytes([seq + 1]) + body)
    _, reply = read_packet(sock)
    if reply[0] != 0x00:
        raise ConnectionError(f"login refused: {reply[3:].decode(errors='replace')}")
    return sock


def main():
    host, port, user, password, count = sys.argv[1:6]
    held = [login(host, int(port), user, password) for _ in range(int(count))]
    print(f"ready {len(held)}", flush=True)
    sys.stdin.read()


if __name__ == "__main__":
    main()
