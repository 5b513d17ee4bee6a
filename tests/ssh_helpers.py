"""A real OpenSSH server (Debian's openssh-server) for the SSH tunnel's tests.

`Sshd` runs `/usr/sbin/sshd -D -e` as a child of the test, in its own process group, on a loopback
port, with a host key, an authorized_keys file and a config generated in a temporary directory.
`kill()` ends the listener and every session it forked (SIGKILL to each: sshd puts each session in
a session of its own, so the process group is not enough), as a crashed or rebooted bastion would; `start()` again brings it back on the same port with the same host key.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

SSHD = Path("/usr/sbin/sshd")
SSH_KEYGEN = "ssh-keygen"


def keygen(path: Path, passphrase: str = "", comment: str = "pg-mcp-test") -> Path:
    """A new ed25519 key pair at `path` (private) and `path`.pub."""
    subprocess.run(
        [SSH_KEYGEN, "-q", "-t", "ed25519", "-N", passphrase, "-C", comment, "-f", str(path)],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return path


def fingerprint(public_key: Path) -> str:
    """`SHA256:...`, as ssh-keygen -l prints it."""
    out = subprocess.run(
        [SSH_KEYGEN, "-l", "-E", "sha256", "-f", str(public_key)],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    return out.split()[1]


def descendants(pid: int) -> list[int]:
    """The processes below `pid` (its children, theirs, ...), from /proc's parent links (Linux)."""
    children: dict[int, list[int]] = defaultdict(list)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()  # after "pid (comm) ": state, ppid, ...
        children[int(fields[1])].append(int(text.split(maxsplit=1)[0]))
    found: list[int] = []
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def sshd_missing_reason() -> str | None:
    """Why the tests cannot run an sshd here, or None."""
    if not SSHD.exists():
        return f"{SSHD} is missing: install openssh-server (apt-get install openssh-server)"
    if os.geteuid() == 0 and not Path("/run/sshd").is_dir():
        # sshd as root needs its privilege separation directory; systemd's tmpfiles make it at boot.
        try:
            Path("/run/sshd").mkdir(mode=0o755)
        except OSError as exc:
            return f"/run/sshd (sshd's privilege separation directory) cannot be made: {exc}"
    return None


@dataclass
class Sshd:
    """One sshd on 127.0.0.1:`port`; `authorized` lists the public keys it accepts."""

    root: Path
    authorized: list[Path]
    port: int = field(default_factory=free_port)
    extra_config: str = ""
    process: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.host_key = keygen(self.root / "ssh_host_ed25519_key", comment="host")
        (self.root / "authorized_keys").write_text(
            "".join(Path(f"{key}.pub").read_text() for key in self.authorized)
        )
        config = self.root / "sshd_config"
        config.write_text(
            f"ListenAddress 127.0.0.1:{self.port}\n"
            f"HostKey {self.host_key}\n"
            f"PidFile {self.root / 'sshd.pid'}\n"
            f"AuthorizedKeysFile {self.root / 'authorized_keys'}\n"
            "StrictModes no\n"
            "PermitRootLogin prohibit-password\n"
            "PubkeyAuthentication yes\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            "UsePAM no\n"
            "AllowTcpForwarding yes\n"
            "AllowAgentForwarding no\n"
            "X11Forwarding no\n"
            "PermitTTY no\n"
            "PrintMotd no\n"
            "LogLevel VERBOSE\n" + self.extra_config
        )
        checked = subprocess.run(
            [str(SSHD), "-t", "-f", str(config)], capture_output=True, text=True, timeout=30
        )
        if checked.returncode != 0:
            raise RuntimeError(f"sshd -t refused the generated config: {checked.stderr.strip()}")
        self.config = config

    @property
    def host_public_key(self) -> Path:
        return Path(f"{self.host_key}.pub")

    def known_hosts_line(self) -> str:
        """The host key as known_hosts lists a server on a port other than 22."""
        kind, body = self.host_public_key.read_text().split()[:2]
        return f"[127.0.0.1]:{self.port} {kind} {body}\n"

    def start(self, timeout: float = 20.0) -> None:
        """Start sshd and wait (at most `timeout` seconds) until it greets on its port."""
        log = (self.root / "sshd.log").open("ab")
        self.process = subprocess.Popen(
            [str(SSHD), "-D", "-e", "-f", str(self.config)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"sshd exited with {self.process.returncode}: {self.log()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
                    if sock.recv(64).startswith(b"SSH-2.0"):
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"sshd did not answer on port {self.port} within {timeout}s: {self.log()}")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL to sshd and every process it forked; waits for the listener to exit."""
        if self.process is None:
            return
        forked = descendants(self.process.pid)
        self.process.kill()
        for pid in forked:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        self.process = None

    def log(self) -> str:
        path = self.root / "sshd.log"
        return path.read_text(errors="replace") if path.exists() else ""
