# Copyright: nodeprep.cni contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A minimal CRI client in the standard library: gRPC over HTTP/2 on containerd's unix socket.

Managed nodes have no gRPC library (and often no crictl), yet the CRI's own ``Status`` is the
only place that says whether containerd considers its network ready. Two unary calls are
enough (``Version`` and ``Status``), so this speaks just that much HTTP/2: the connection
preface, SETTINGS (and their acknowledgement), one HEADERS frame with literal HPACK fields, one
DATA frame, and reads frames until the stream ends. Protobuf messages are decoded by field number.
"""

from __future__ import annotations

import os
import socket
import struct

SERVICE = "/runtime.v1.RuntimeService/"
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY = 0x0, 0x1, 0x3, 0x4, 0x6, 0x7
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4
STREAM = 1


class CRIError(Exception):
    """The CRI did not answer: no socket, a refused connection, or an error instead of a reply."""


# --- protobuf --------------------------------------------------------------------------------

def _varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(data, pos):
    shift = result = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def decode_fields(data):
    """``[(field number, value)]``: ints for varints, bytes for length-delimited fields."""
    fields, pos = [], 0
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        number, wire = key >> 3, key & 0x7
        if wire == 0:
            value, pos = _read_varint(data, pos)
        elif wire == 2:
            length, pos = _read_varint(data, pos)
            value, pos = bytes(data[pos:pos + length]), pos + length
        elif wire == 1:
            value, pos = data[pos:pos + 8], pos + 8
        elif wire == 5:
            value, pos = data[pos:pos + 4], pos + 4
        else:
            raise CRIError("unexpected protobuf wire type %d" % wire)
        fields.append((number, value))
    return fields


def _text(value):
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else ""


# --- HTTP/2 ----------------------------------------------------------------------------------

def _hpack_int(value, prefix_bits, first_byte=0):
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first_byte | value])
    out = bytearray([first_byte | limit])
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _literal(name, value):
    """A literal header field without indexing, new name, no Huffman coding."""
    name, value = name.encode(), value.encode()
    return b"\x00" + _hpack_int(len(name), 7) + name + _hpack_int(len(value), 7) + value


def _frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def _recv_exact(sock, size):
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise CRIError("the CRI closed the connection")
        data.extend(chunk)
    return bytes(data)


def call(socket_path, method, request=b"", timeout=10.0):
    """One unary gRPC call; returns the reply message's bytes."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        try:
            sock.connect(socket_path)
        except OSError as exc:
            raise CRIError("cannot connect to %s: %s" % (socket_path, exc)) from None
        headers = b"".join(_literal(k, v) for k, v in (
            (":method", "POST"), (":scheme", "http"), (":path", SERVICE + method), (":authority", "localhost"),
            ("content-type", "application/grpc"), ("te", "trailers")))
        message = b"\x00" + struct.pack(">I", len(request)) + request
        sock.sendall(PREFACE + _frame(SETTINGS, 0, 0) + _frame(HEADERS, END_HEADERS, STREAM, headers)
                     + _frame(DATA, END_STREAM, STREAM, message))
        body = bytearray()
        while True:
            header = _recv_exact(sock, 9)
            length = struct.unpack(">I", b"\x00" + header[:3])[0]
            kind, flags, stream = header[3], header[4], struct.unpack(">I", header[5:9])[0] & 0x7FFFFFFF
            payload = _recv_exact(sock, length)
            if kind == SETTINGS and not flags & ACK:
                sock.sendall(_frame(SETTINGS, ACK, 0))
            elif kind == PING and not flags & ACK:
                sock.sendall(_frame(PING, ACK, 0, payload))
            elif kind == GOAWAY:
                raise CRIError("the CRI closed the connection (GOAWAY)")
            elif kind == RST_STREAM and stream == STREAM:
                raise CRIError("the CRI reset the call to %s" % method)
            elif kind == DATA and stream == STREAM:
                body.extend(payload)
            if stream == STREAM and kind in (DATA, HEADERS) and flags & END_STREAM:
                break
    except socket.timeout:
        raise CRIError("no answer from %s within %s s" % (socket_path, timeout)) from None
    finally:
        sock.close()
    if len(body) < 5:
        raise CRIError("the CRI answered %s with an error (is this containerd's CRI v1 socket?)" % method)
    size = struct.unpack(">I", bytes(body[1:5]))[0]
    return bytes(body[5:5 + size])


def version(socket_path, timeout=10.0):
    fields = dict(decode_fields(call(socket_path, "Version", b"", timeout)))
    return {"runtime_name": _text(fields.get(2)), "runtime_version": _text(fields.get(3)),
            "runtime_api_version": _text(fields.get(4))}


def status(socket_path, timeout=10.0):
    """``{"conditions": {type: {status, reason, message}}, "info": {key: text}}`` (verbose)."""
    reply = decode_fields(call(socket_path, "Status", b"\x08\x01", timeout))
    conditions, info = {}, {}
    for number, value in reply:
        if number == 1:
            for sub_number, condition in decode_fields(value):
                if sub_number != 1:
                    continue
                parts = dict(decode_fields(condition))
                conditions[_text(parts.get(1))] = {"status": bool(parts.get(2, 0)), "reason": _text(parts.get(3)),
                                                   "message": _text(parts.get(4))}
        elif number == 2:
            entry = dict(decode_fields(value))
            info[_text(entry.get(1))] = _text(entry.get(2))
    return {"conditions": conditions, "info": info}


def answer(socket_path, timeout, runtime):
    """``(cri, runtime_version)``: the CRI's answer as the *_info modules return it, and the version it
    gave ("" when it did not answer). *runtime* names who should be listening, for the error."""
    report = {"reachable": False, "error": "", "runtime_ready": False, "network_ready": False,
              "conditions": {}, "last_cni_load_status": ""}
    if not os.path.exists(socket_path):
        report["error"] = "no CRI socket at %s (%s is not running)" % (socket_path, runtime)
        return report, ""
    try:
        found = version(socket_path, timeout)
        state = status(socket_path, timeout)
    except CRIError as exc:
        report["error"] = str(exc)
        return report, ""
    conditions = state["conditions"]
    report.update(reachable=True, conditions=conditions,
                  runtime_ready=conditions.get("RuntimeReady", {}).get("status", False),
                  network_ready=conditions.get("NetworkReady", {}).get("status", False),
                  last_cni_load_status=state["info"].get("lastCNILoadStatus", ""))
    return report, found["runtime_version"]
