"""Shared by the blocking and the asyncio clients: where the socket is, who serves it, the
frame format (doc/PROTOCOL.md §2) and the JSON-RPC messages (§3)."""

import json
import os
import socket
import struct
from typing import Any, Dict, Optional, Tuple

from .errors import ProtocolError

#: The smallest and largest payload of a frame (§2 and §5).
FRAME_MIN = 2
FRAME_MAX = 1024 * 1024
HEADER = struct.Struct(">I")


def default_socket_path() -> str:
    """The daemon's socket, found as taskrouterctl finds it: ``$TASKROUTERD_SOCKET`` when
    set and non-empty, else ``$XDG_RUNTIME_DIR/taskrouterd/socket``, else
    ``/run/taskrouterd/socket``."""
    s = os.environ.get("TASKROUTERD_SOCKET")
    if s:
        return s
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        return os.path.join(xdg, "taskrouterd", "socket")
    return "/run/taskrouterd/socket"


def resolve_socket_path(path: Optional[str]) -> str:
    """``path`` (an ``os.PathLike`` too) or the default one."""
    return os.fspath(path) if path is not None else default_socket_path()


def check_server(sock: socket.socket) -> None:
    """Refuse a server that is neither our uid nor root (nor the uid in
    ``$TASKROUTERD_TRUST_UID``), before anything is sent to it, as libtaskrouter does:
    someone else listening at the path would otherwise see our requests and tokens.
    Raises PermissionError. Where SO_PEERCRED does not exist (not Linux), nothing is
    checked."""
    opt = getattr(socket, "SO_PEERCRED", None)
    if opt is None:
        return
    creds = sock.getsockopt(socket.SOL_SOCKET, opt, struct.calcsize("3i"))
    pid, uid, _gid = struct.unpack("3i", creds)
    if uid in (os.getuid(), 0):
        return
    trust = os.environ.get("TASKROUTERD_TRUST_UID", "")
    if trust.isdigit() and int(trust) == uid:
        return
    raise PermissionError(
        1, f"the server at the socket runs as uid {uid} (pid {pid}), "
           f"neither ours ({os.getuid()}) nor root")


def encode(obj: Dict[str, Any]) -> bytes:
    """One frame: the 4-byte big-endian length, then the compact JSON."""
    try:
        payload = json.dumps(obj, separators=(",", ":"), ensure_ascii=False,
                             allow_nan=False).encode("utf-8")
    except ValueError as e:  # NaN, infinities, circular references
        raise ValueError(f"cannot send as JSON: {e}") from None
    if len(payload) > FRAME_MAX:
        raise ValueError(f"message too large: {len(payload)} bytes, at most {FRAME_MAX}")
    return HEADER.pack(len(payload)) + payload


def frame_length(header: bytes) -> int:
    """The payload length a header announces; ProtocolError when out of bounds."""
    (n,) = HEADER.unpack(header)
    if n < FRAME_MIN or n > FRAME_MAX:
        raise ProtocolError(f"frame length {n} out of bounds ({FRAME_MIN}..{FRAME_MAX})")
    return n


def decode(payload: bytes) -> Dict[str, Any]:
    """A frame's payload as a JSON-RPC message (a dict)."""
    try:
        msg = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise ProtocolError(f"unreadable message from the daemon: {e}") from None
    if not isinstance(msg, dict) or msg.get("jsonrpc") != "2.0":
        raise ProtocolError(f"not a JSON-RPC 2.0 message: {payload[:200]!r}")
    return msg


class FrameReader:
    """Cuts frames out of a byte stream: feed() bytes, then take messages with next()."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> None:
        self._buf += data

    def next(self) -> Optional[Dict[str, Any]]:
        """The next complete message, or None when more bytes are needed."""
        if len(self._buf) < 4:
            return None
        n = frame_length(bytes(self._buf[:4]))
        if len(self._buf) < 4 + n:
            return None
        payload = bytes(self._buf[4:4 + n])
        del self._buf[:4 + n]
        return decode(payload)

    def partial(self) -> bool:
        """Whether part of a frame is buffered."""
        return bool(self._buf)


def request(msg_id: int, method: str, params: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    msg: Dict[str, Any] = {"jsonrpc": "2.0", "id": msg_id, "method": method}
    if params is not None:
        msg["params"] = params
    return msg


def classify(msg: Dict[str, Any]) -> Tuple[str, Any]:
    """("response", id), ("event", params) or ("other", None) for a received message."""
    if "method" in msg:
        if msg.get("method") == "event" and "id" not in msg and isinstance(
                msg.get("params"), dict):
            return "event", msg["params"]
        return "other", None
    if "result" in msg or "error" in msg:
        return "response", msg.get("id")
    raise ProtocolError(f"neither a response nor a notification: {msg!r}")


def raw_params(params: Optional[Dict[str, Any]], kwargs: Dict[str, Any]) -> Dict[str, Any]:
    """call()'s params: the dict given, then the keyword arguments with a trailing
    underscore dropped (``from_`` -> ``from``); members that are None are left out."""
    out: Dict[str, Any] = {}
    if params:
        out.update(params)
    for k, v in kwargs.items():
        out[k[:-1] if k.endswith("_") else k] = v
    return {k: v for k, v in out.items() if v is not None}


def camel(name: str) -> str:
    """snake_case -> camelCase (``target_worker_sid`` -> ``targetWorkerSid``); a trailing
    underscore, used for Python keywords (``from_``), is dropped."""
    name = name.rstrip("_")
    head, *rest = name.split("_")
    return head + "".join(w[:1].upper() + w[1:] for w in rest)


def camel_params(**kwargs: Any) -> Dict[str, Any]:
    """The keyword arguments of a convenience method as the daemon's params: camelCase
    names, members that are None left out."""
    return {camel(k): v for k, v in kwargs.items() if v is not None}
