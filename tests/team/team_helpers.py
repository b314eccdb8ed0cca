"""Plain helpers of the team tests: passwords, a self-signed certificate, a team server."""

from __future__ import annotations

import datetime
import ipaddress
import os
import secrets
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from env_helpers import stop_group


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def password(who: str) -> str:
    """A fresh password, long enough for MLflow's policy and unique enough to grep for."""
    return f"{who}-{secrets.token_urlsafe(18)}"


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (its own CA) and its unencrypted key, in PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "server.pem", folder / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    key_path.write_bytes(pem)
    key_path.chmod(0o600)
    return cert_path, key_path


@dataclass
class TeamServer:
    """`cnnlab server --auth --tls-cert --tls-key` in its own process group."""

    home: Path
    uri: str
    cert: Path
    admin_password: str
    proc: subprocess.Popen | None = None

    @property
    def runs_dir(self) -> Path:
        return self.home / "runs"

    @property
    def log(self) -> Path:
        return self.home / "server.log"

    def start(self, port: int, key: Path) -> None:
        argv = [sys.executable, "-m", "cnnlab.cli", "server", "--auth", "--port", str(port)]
        argv += ["--runs-dir", str(self.runs_dir), "--tls-cert", str(self.cert)]
        argv += ["--tls-key", str(key)]
        env = {**os.environ, "CNNLAB_ADMIN_PASSWORD": self.admin_password}
        with self.log.open("w") as log:
            self.proc = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        context = ssl.create_default_context(cafile=str(self.cert))
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                with urllib.request.urlopen(self.uri + "/health", timeout=2, context=context):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("cnnlab server --auth did not come up:\n" + self.log.read_text())

    def stop(self) -> None:
        stop_group(self.proc)
