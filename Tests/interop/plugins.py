"""Building real plugins for the tests: C with cc, Swift through SwiftPM (already built)."""
import os
import pathlib
import shutil
import subprocess

from conftest import BUILD_DIR, ROOT

INCLUDE = ROOT / "include"
SOURCES = ROOT / "Tests" / "plugins"


def build_c(source, output, defines=(), werror=True, optimize="-O1"):
    flags = ["-std=gnu11", "-Wall", "-Wextra", "-shared", "-fPIC", optimize, f"-I{INCLUDE}"]
    if werror:
        flags.append("-Werror")
    flags += [f"-D{d}" for d in defines]
    subprocess.run(["cc", *flags, "-o", str(output), str(source), "-lpthread"], check=True)
    os.chmod(output, 0o755)
    return output


def plugin_dir(tmp_path, name="plugins"):
    directory = tmp_path / name
    directory.mkdir()
    os.chmod(directory, 0o755)
    return directory


def swift_plugin(product, output):
    shutil.copy(BUILD_DIR / f"lib{product}.so", output)
    os.chmod(output, 0o755)
    return output


class Trace:
    """The lines a probe plugin wrote, as (plugin, event, socket, namespace, extra) tuples."""

    def __init__(self, path):
        self.path = pathlib.Path(path)

    def lines(self):
        if not self.path.exists():
            return []
        result = []
        for line in self.path.read_text().splitlines():
            parts = line.split(" ", 4)
            parts += [""] * (5 - len(parts))
            result.append(tuple(parts))
        return result

    def events(self, socket_id=None, plugin=None):
        return [(p, e, x) for (p, e, s, n, x) in self.lines()
                if (socket_id is None or s == socket_id) and (plugin is None or p == plugin)]
