"""Project-local MariaDB/MySQL and Redis instances: data under an ignored folder, own ports.

Used by the services manager when no server is reachable, and by the fault tests, which start and
break their own instances and never touch the machine's shared ones. A Redis may be a replica of
another (LocalRedis.replicaof), watched by Redis Sentinels (LocalSentinel) that promote it when
its master dies.
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

from workbook.errors import SetupError
from workbook.setup.debian import debian_install, debian_root


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


def process_alive(pid: int) -> bool:
    """Process `pid` runs (a child of ours that exited is reaped, and is not)."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def pid_file_alive(pid_file: Path) -> int | None:
    """The pid written in `pid_file`, if that process runs."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if process_alive(pid) else None


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


def _daemon_stop(pid_file: Path, timeout: float, what: str, log: Path) -> None:
    """SIGTERM the process of `pid_file`, if it runs, and wait until it is gone."""
    pid = pid_file_alive(pid_file)
    if pid is None:
        return
    os.kill(pid, signal.SIGTERM)
    _wait(lambda: pid_file_alive(pid_file) is None, timeout, what, log)


def _daemon_kill(pid_file: Path) -> None:
    """SIGKILL the process of `pid_file`, if it runs (as a crash would)."""
    pid = pid_file_alive(pid_file)
    if pid is not None:
        os.kill(pid, signal.SIGKILL)


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
        return pid_file_alive(self.pid_file) is not None and mysql_greets(self.host, self.port)

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
        pid = pid_file_alive(self.pid_file)
        if pid is None:
            return
        os.kill(pid, signal.SIGTERM)

        def gone() -> bool:
            return pid_file_alive(self.pid_file) is None

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
        pid = pid_file_alive(self.pid_file)
        if pid is not None:
            os.kill(pid, signal.SIGKILL)


@dataclass
class LocalRedis:
    """A private redis-server without persistence; with `replicaof` (host, port), a replica of
    that master (Redis Sentinel may promote it, and then it stays a master). With `password`,
    clients must AUTH (requirepass), and a replica uses it with its master (masterauth): a Redis
    on an address other hosts reach needs one."""

    root: Path
    port: int
    host: str = "127.0.0.1"
    replicaof: tuple[str, int] | None = None
    password: str = ""

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
        return pid_file_alive(self.pid_file) is not None and port_open(self.host, self.port)

    @property
    def url(self) -> str:
        """redis://[:password@]host:port/0"""
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}{self.host}:{self.port}/0"

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
                *(["--requirepass", self.password, "--masterauth", self.password]
                  if self.password else []),
                *(["--replicaof", self.replicaof[0], str(self.replicaof[1])]
                  if self.replicaof else []),
            ],
            check=True,
            capture_output=True,
        )
        _wait(self.running, timeout, f"local Redis on port {self.port} starting", self.log_file)

    def stop(self, timeout: float = 10) -> None:
        _daemon_stop(self.pid_file, timeout, "Redis shutdown", self.log_file)

    def kill(self) -> None:
        _daemon_kill(self.pid_file)


SENTINEL_PACKAGE = "redis-sentinel"


def sentinel_command() -> list[str]:
    """How to run Redis Sentinel: Debian's `redis-sentinel`, else `redis-server --sentinel` (the
    same program). With neither, as root on Debian, `apt-get install redis-sentinel` first (the
    package also starts the machine's own sentinel service, on port 26379); else SetupError with
    the command to run."""
    path = os.environ.get("PATH", "") + ":/usr/bin:/usr/local/bin"
    found = shutil.which("redis-sentinel", path=path)
    if found:
        return [found]
    server = LocalRedis.binary()
    if server:
        return [server, "--sentinel"]
    fix = f"apt-get install -y {SENTINEL_PACKAGE}"
    if debian_root():
        if not debian_install(SENTINEL_PACKAGE):
            raise SetupError(f"'apt-get install {SENTINEL_PACKAGE}' failed", fix)
        found = shutil.which("redis-sentinel", path=path)
        if found:
            return [found]
    raise SetupError("no redis-sentinel or redis-server binary on PATH",
                     fix if os.geteuid() == 0 else f"sudo {fix}")


@dataclass
class LocalSentinel:
    """A private Redis Sentinel watching the master `master` (host, port) under the name `name`.

    Its config file lives in `root` and is written once, at the first start: a sentinel rewrites
    it with what it learns (the other sentinels, the replicas, the current master and epoch), so
    a restarted sentinel goes on from there. Failover settings are short, for tests: the master
    is down for a sentinel after `down_after_ms` without a reply, `quorum` sentinels must agree,
    and a failover that did not finish is tried again after `failover_timeout_ms`."""

    root: Path
    port: int
    master: tuple[str, int]
    name: str = "quiz"
    quorum: int = 2
    down_after_ms: int = 1000
    failover_timeout_ms: int = 5000
    host: str = "127.0.0.1"
    password: str = ""  # the data servers' requirepass (sentinel auth-pass), if they have one

    @property
    def pid_file(self) -> Path:
        return self.root / "sentinel.pid"

    @property
    def log_file(self) -> Path:
        return self.root / "sentinel.log"

    @property
    def conf_file(self) -> Path:
        return self.root / "sentinel.conf"

    def config_text(self) -> str:
        name, (host, port) = self.name, self.master
        return "\n".join([
            f"port {self.port}",
            f"bind {self.host}",
            "daemonize yes",
            f"pidfile {self.pid_file}",
            f"logfile {self.log_file}",
            f"dir {self.root}",
            f"sentinel monitor {name} {host} {port} {self.quorum}",
            f"sentinel down-after-milliseconds {name} {self.down_after_ms}",
            f"sentinel failover-timeout {name} {self.failover_timeout_ms}",
            f"sentinel parallel-syncs {name} 1",
            *([f"sentinel auth-pass {name} {self.password}"] if self.password else []),
        ]) + "\n"

    def running(self) -> bool:
        return pid_file_alive(self.pid_file) is not None and port_open(self.host, self.port)

    def start(self, timeout: float = 20) -> None:
        if self.running():
            return
        command = sentinel_command()
        if port_open(self.host, self.port):
            raise SetupError(f"port {self.port} is held by another program",
                             "free it or pick another port for the sentinel")
        self.root.mkdir(parents=True, exist_ok=True)
        if not self.conf_file.exists():
            self.conf_file.write_text(self.config_text())
            self.conf_file.chmod(0o600)  # it may hold the data servers' password
        # redis-sentinel takes the config file first; `redis-server --sentinel` after it.
        subprocess.run([command[0], str(self.conf_file), *command[1:]], check=True,
                       capture_output=True)
        _wait(self.running, timeout, f"local Redis Sentinel on port {self.port} starting",
              self.log_file)

    def stop(self, timeout: float = 10) -> None:
        _daemon_stop(self.pid_file, timeout, "Sentinel shutdown", self.log_file)

    def kill(self) -> None:
        _daemon_kill(self.pid_file)
