"""A PostgreSQL server of the test run's own: initdb into a temporary directory, loopback on a
free port, stopped at the end. Nothing on the machine is assumed but Debian's `postgresql`
package (scripts/setup installs it); PostgreSQL refuses to run as root, so as root the server
runs as the `postgres` user the package creates.
"""
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time


def _bin_dir():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise RuntimeError("PostgreSQL is not installed (scripts/setup installs Debian's postgresql)")
    return os.path.dirname(found[-1])


class TempPostgres:
    def __init__(self, port):
        self.port = port
        self.bin = _bin_dir()
        self.dir = tempfile.mkdtemp(prefix="sio-pg-")
        self.data = os.path.join(self.dir, "data")
        self.user = "sio"
        self.proc = None
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            entry = pwd.getpwnam("postgres")
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)
        self._run([os.path.join(self.bin, "initdb"), "-D", self.data, "-U", self.user, "--auth=trust",
                   "--encoding=UTF8", "--no-sync", "-A", "trust"])
        self.start()
        self._run([os.path.join(self.bin, "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", self.user, "sio"])

    def _command(self, args):
        if self._as_postgres:
            return ["runuser", "-u", "postgres", "--", *args]
        return args

    def _run(self, args):
        subprocess.run(self._command(args), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=self.dir)

    def url(self, database="sio", channel=None):
        url = f"postgres://{self.user}@127.0.0.1:{self.port}/{database}"
        return url + (f"?channel={channel}" if channel else "")

    def start(self):
        self.proc = subprocess.Popen(
            self._command([os.path.join(self.bin, "postgres"), "-D", self.data, "-p", str(self.port),
                           "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.dir}",
                           "-c", "fsync=off", "-c", "max_connections=200", "-c", "synchronous_commit=off"]),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.dir)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            ready = subprocess.run([os.path.join(self.bin, "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if ready.returncode == 0:
                return
            if self.proc.poll() is not None:
                raise RuntimeError("PostgreSQL exited at start")
            time.sleep(0.1)
        raise RuntimeError("PostgreSQL did not become ready")

    def stop(self):
        """Stops the server (fast shutdown: every connection closed); start() brings the same
        data directory back."""
        if self.proc and self.proc.poll() is None:
            subprocess.run(self._command([os.path.join(self.bin, "pg_ctl"), "stop", "-D", self.data, "-m", "fast", "-w"]),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.dir)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def psql(self, sql, database="sio"):
        return subprocess.run([os.path.join(self.bin, "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user,
                               "-d", database, "-At", "-c", sql], check=True, capture_output=True, text=True).stdout

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
