"""Project-local MariaDB/MySQL and Redis instances: data under an ignored folder, own ports.

Used by the services manager when no server is reachable, and by the fault tests, which start and
break their own instances and never touch the machine's shared ones.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import SetupError


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def mysql_greets(host: str, port: int, timeout: float = 1.0) -> bool:
    """True once mysqld sends its handshake packet: it is then in its accept loop, ready.

    An open port is not enough. mysqld listens a moment before it accepts, and a SIGTERM that
    lands in that gap can leave MariaDB 10.11 hung for good, neither serving nor shutting down
    (seen under load: the log stops at "Server socket created" and a second SIGTERM does nothing).
    """
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            return bool(sock.recv(1))
    except OSError:
        return False


def _pid_alive(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:  # our own child that exited: reap it
            return None
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
        return pid
    except OSError:
        return None


def _wait(predicate, timeout: float, what: str, log: Path | None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    tail = ""
    if log and log.exists():
        tail = " | ".join(log.read_text(errors="replace").splitlines()[-3:])
    raise SetupError(f"{what}: not done within {timeout:.0f}s ({tail})", f"see {log}")


@dataclass
class LocalMariaDB:
    """A private mysqld: MariaDB (mariadb-install-db) or MySQL 8 (mysqld --initialize-insecure)."""

    root: Path
    port: int
    host: str = "127.0.0.1"

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    @property
    def pid_file(self) -> Path:
        return self.root / "mysqld.pid"

    @property
    def log_file(self) -> Path:
        return self.root / "mysqld.log"

    @staticmethod
    def binaries() -> tuple[str, str | None] | None:
        """(server, installer) found on PATH, or None. installer None means MySQL 8's mysqld."""
        extra = os.pathsep + "/usr/sbin:/usr/local/sbin:/usr/local/opt/mariadb/bin"
        path = os.environ.get("PATH", "") + extra
        server = shutil.which("mariadbd", path=path)
        installer = shutil.which("mariadb-install-db", path=path) or shutil.which(
            "mysql_install_db", path=path
        )
        if server and installer:
            return server, installer
        mysqld = shutil.which("mysqld", path=path)
        if mysqld and installer:  # MariaDB < 10.5 ships mysqld + mysql_install_db
            return mysqld, installer
        if mysqld:
            return mysqld, None
        return None

    def running(self) -> bool:
        return _pid_alive(self.pid_file) is not None and mysql_greets(self.host, self.port)

    def start(self, timeout: float = 60) -> None:
        if self.running():
            return
        found = self.binaries()
        if not found:
            raise SetupError(
                "no MariaDB/MySQL server binary on PATH", "apt-get install mariadb-server"
            )
        server, installer = found
        if port_open(self.host, self.port):
            raise SetupError(
                f"port {self.port} is held by another program",
                "free it or set QUIZ_LOCAL_MYSQL_PORT to a free port",
            )
        self.root.mkdir(parents=True, exist_ok=True)
        user = ["--user=root"] if os.geteuid() == 0 else []
        if not (self.datadir / "mysql").exists():
            shutil.rmtree(self.datadir, ignore_errors=True)  # a half-made datadir never survives
            if installer:
                cmd = [
                    installer,
                    "--no-defaults",
                    f"--datadir={self.datadir}",
                    "--auth-root-authentication-method=normal",
                    "--skip-test-db",
                    *user,
                ]
            else:
                cmd = [
                    server,
                    "--no-defaults",
                    "--initialize-insecure",
                    f"--datadir={self.datadir}",
                    *user,
                ]
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                shutil.rmtree(self.datadir, ignore_errors=True)
                last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["?"]
                raise SetupError(f"initialising {self.datadir} failed: {last[0]}", f"see {cmd[0]}")
        args = [
            server,
            "--no-defaults",
            f"--datadir={self.datadir}",
            f"--port={self.port}",
            f"--socket={self.root / 'mysqld.sock'}",
            f"--bind-address={self.host}",
            f"--pid-file={self.pid_file}",
            f"--log-error={self.log_file}",
            "--skip-log-bin",
            "--max-connections=500",
            *user,
        ]
        if installer is None:
            args.append("--mysqlx=OFF")
        with open(self.log_file, "ab") as log:
            subprocess.Popen(args, stdout=log, stderr=log, start_new_session=True)
        _wait(self.running, timeout, f"local MySQL on port {self.port} starting", self.log_file)

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM and wait for a clean shutdown; a server still there after `timeout` is killed
        (InnoDB recovers at the next start) and the error says so, so no hung mysqld outlives us."""
        pid = _pid_alive(self.pid_file)
        if pid is None:
            return
        os.kill(pid, signal.SIGTERM)

        def gone() -> bool:
            return _pid_alive(self.pid_file) is None

        try:
            _wait(gone, timeout, "MySQL shutdown", None)
        except SetupError:
            self.kill()
            _wait(gone, 10, "MySQL exiting after SIGKILL", None)
            raise SetupError(
                f"MySQL on port {self.port} ignored SIGTERM for {timeout:.0f}s and was killed",
                f"see {self.log_file}",
            ) from None

    def kill(self) -> None:
        pid = _pid_alive(self.pid_file)
        if pid is not None:
            os.kill(pid, signal.SIGKILL)


@dataclass
class LocalRedis:
    root: Path
    port: int
    host: str = "127.0.0.1"

    @property
    def pid_file(self) -> Path:
        return self.root / "redis.pid"

    @property
    def log_file(self) -> Path:
        return self.root / "redis.log"

    @staticmethod
    def binary() -> str | None:
        return shutil.which(
            "redis-server", path=os.environ.get("PATH", "") + ":/usr/bin:/usr/local/bin"
        )

    def running(self) -> bool:
        return _pid_alive(self.pid_file) is not None and port_open(self.host, self.port)

    def start(self, timeout: float = 20) -> None:
        if self.running():
            return
        server = self.binary()
        if not server:
            raise SetupError("no redis-server binary on PATH", "apt-get install redis-server")
        if port_open(self.host, self.port):
            raise SetupError(
                f"port {self.port} is held by another program",
                "free it or set QUIZ_LOCAL_REDIS_PORT to a free port",
            )
        self.root.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                server,
                "--port",
                str(self.port),
                "--bind",
                self.host,
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "yes",
                "--dir",
                str(self.root),
                "--pidfile",
                str(self.pid_file),
                "--logfile",
                str(self.log_file),
            ],
            check=True,
            capture_output=True,
        )
        _wait(self.running, timeout, f"local Redis on port {self.port} starting", self.log_file)

    def stop(self, timeout: float = 10) -> None:
        pid = _pid_alive(self.pid_file)
        if pid is None:
            return
        os.kill(pid, signal.SIGTERM)
        _wait(lambda: _pid_alive(self.pid_file) is None, timeout, "Redis shutdown", self.log_file)

    def kill(self) -> None:
        pid = _pid_alive(self.pid_file)
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
