"""Optional CurveZMQ for ``posetween serve``: encryption, client keys, and per-key stream ids.

With a :class:`CurveConfig` both of the service's sockets are CURVE servers with the service's
key pair. A client connects with its own key pair and the service's public key; ZeroMQ's
authentication (ZAP, :class:`zmq.auth.thread.ThreadAuthenticator`) admits only the client
public keys listed, and refuses every other connection during the handshake (nothing it sends
is read). Each listed key is allowed a stream-id prefix: a keyframe (or a ``frame/<camera>``
message) whose id does not start with it is dropped (``not_allowed``), so a client cannot write
another client's streams. Reading is all or nothing (a PUB socket sends every subscriber what
it subscribes to): any listed key may read every stream.

Keys are ZeroMQ's Z85 text (40 characters). The service's key pair is a certificate file as
``zmq.auth.create_certificates`` writes it (``NAME.key_secret``); the clients are a text file,
one client a line: ``<public key> [<stream-id prefix>]`` (no prefix: any id), ``# comments``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator


@dataclass
class CurveConfig:
    server_public: bytes                 # Z85
    server_secret: bytes                 # Z85
    clients: dict[bytes, str] = field(default_factory=dict)   # client public key (Z85) -> allowed prefix

    @classmethod
    def from_files(cls, server_secret_file, clients_file) -> "CurveConfig":
        public, secret = zmq.auth.load_certificate(str(server_secret_file))
        if not secret:
            raise ValueError(f"{server_secret_file}: no secret key (use the NAME.key_secret file)")
        return cls(public, secret, read_clients(clients_file))

    def prefix_of(self, user_id: str | None) -> str | None:
        """The stream-id prefix a connection's key may write (None: not a listed key)."""
        if user_id is None:
            return None
        return self.clients.get(user_id.encode("ascii"))


def read_clients(path) -> dict[bytes, str]:
    clients: dict[bytes, str] = {}
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        parts = line.split()
        # A comment is a word starting with '#' (a key may contain '#', a prefix may not).
        cut = next((i for i, w in enumerate(parts) if w.startswith("#") and (i or len(w) != 40)), len(parts))
        parts = parts[:cut]
        if not parts:
            continue
        key = parts[0].encode("ascii")
        if len(key) != 40 or len(parts) > 2:
            raise ValueError(f"{path}:{n}: expected '<40-character Z85 public key> [<stream-id prefix>]'")
        clients[key] = parts[1] if len(parts) == 2 else ""
    if not clients:
        raise ValueError(f"{path}: no client keys")
    return clients


class _AllowListed:
    """ZAP credentials provider: only the listed client keys."""

    def __init__(self, cfg: CurveConfig):
        self.cfg = cfg

    def callback(self, domain: str, key: bytes) -> bool:
        return key in self.cfg.clients


def start_authenticator(ctx: zmq.Context, cfg: CurveConfig) -> ThreadAuthenticator:
    """ZAP for every CURVE server socket of ``ctx``: admits the listed keys; a message then
    carries its sender's key as the ``User-Id`` property (Z85)."""
    auth = ThreadAuthenticator(ctx)
    auth.start()
    auth.configure_curve_callback(domain="*", credentials_provider=_AllowListed(cfg))
    return auth


def make_server(sock: zmq.Socket, cfg: CurveConfig) -> None:
    """Before bind: the socket is a CURVE server with the service's key pair."""
    sock.curve_secretkey = cfg.server_secret
    sock.curve_publickey = cfg.server_public
    sock.curve_server = True


def make_client(sock: zmq.Socket, curve: tuple[bytes, bytes, bytes]) -> None:
    """Before connect: ``curve`` = (client public, client secret, server public), Z85."""
    public, secret, server = curve
    sock.curve_publickey = public
    sock.curve_secretkey = secret
    sock.curve_serverkey = server
