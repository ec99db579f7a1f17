"""Build the ``djinit`` wheel: the static djinit runner on PATH plus the ``djinit_django`` package.

Usage (``just wheel`` runs it)::

    python3 python/build_wheel.py --binary target/x86_64-unknown-linux-musl/dist/djinit \\
        --version 0.1.0 --out-dir target/wheels

Why a script and not maturin or setuptools: the wheel carries a binary that ``just build`` already
made (static, musl, components embedded by ``runner/build.rs`` after precompiling), which neither
tool can produce in one step without rebuilding it; a wheel is a zip with three metadata files, so
the standard library writes it (PEP 427 / PEP 491), reproducibly (fixed timestamps, sorted entries).

* ``djinit`` goes into ``<name>-<version>.data/scripts/``: pip installs it into the environment's
  ``bin/`` with its executable bit, the way ruff and uv ship theirs.
* The tags say "any Python 3, no ABI, Linux x86_64 with any libc" (manylinux2014 and musllinux_1_1):
  true because the binary is static. The script refuses a binary that is not a static x86-64 ELF,
  so a glibc build can never be shipped under those tags.
* Name ``djinit``, version from Cargo (the caller passes it); summary, Python requirement,
  dependencies and extras (``export``: psycopg for the exporter; ``memcached``: pymemcache for the
  cache backend) come from ``python/pyproject.toml`` so the two never disagree.

Needs Python 3.11+ (``tomllib``). Writes the file only when its bytes change.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import pathlib
import struct
import sys
import tomllib
import zipfile

HERE = pathlib.Path(__file__).resolve().parent
NAME = "djinit"
SOURCE = "https://github.com/djinit/djinit"
TAGS = [
    "py3-none-manylinux_2_17_x86_64",
    "py3-none-manylinux2014_x86_64",
    "py3-none-musllinux_1_1_x86_64",
]
# 1980-01-01, the earliest a zip stores: the same inputs give the same wheel bytes.
EPOCH = (1980, 1, 1, 0, 0, 0)


def check_static_x86_64(data: bytes, path: str) -> None:
    """Refuse anything but a 64-bit little-endian x86-64 ELF executable without an interpreter."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        sys.exit(f"build_wheel: {path}: not a 64-bit little-endian ELF file")
    (e_machine,) = struct.unpack_from("<H", data, 18)
    if e_machine != 0x3E:
        sys.exit(f"build_wheel: {path}: not x86-64 (e_machine {e_machine:#x})")
    (e_phoff,) = struct.unpack_from("<Q", data, 32)
    e_phentsize, e_phnum = struct.unpack_from("<HH", data, 54)
    for i in range(e_phnum):
        (p_type,) = struct.unpack_from("<I", data, e_phoff + i * e_phentsize)
        if p_type == 3:  # PT_INTERP: loaded by a dynamic linker (ld-linux, ld-musl)
            sys.exit(
                f"build_wheel: {path}: dynamically linked (has an ELF interpreter); "
                "the wheel's tags promise any libc: build the static x86_64-unknown-linux-musl djinit"
            )


def metadata(version: str) -> str:
    project = tomllib.loads((HERE / "pyproject.toml").read_text())["project"]
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {NAME}",
        f"Version: {version}",
        "Summary: Init containers and Jobs for Django on Kubernetes without Python (static djinit runner), "
        "plus the Django side: the migration-bundle exporter and the memcached cache backend.",
        f"Home-page: {SOURCE}",
        f"Project-URL: Source, {SOURCE}",
        f"License: {project['license']['text']}",
        f"Requires-Python: {project['requires-python']}",
    ]
    lines += [f"Requires-Dist: {dep}" for dep in project.get("dependencies", [])]
    for extra, deps in sorted(project.get("optional-dependencies", {}).items()):
        lines.append(f"Provides-Extra: {extra}")
        lines += [f'Requires-Dist: {dep}; extra == "{extra}"' for dep in deps]
    return "\n".join(lines) + "\n\n" + project["description"] + "\n"


def record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def build(binary: pathlib.Path, version: str) -> tuple[str, bytes]:
    exe = binary.read_bytes()
    check_static_x86_64(exe, str(binary))
    dist_info = f"{NAME}-{version}.dist-info"
    files: list[tuple[str, bytes, int]] = []
    package = HERE / "djinit_django"
    for path in sorted(package.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        files.append((path.relative_to(HERE).as_posix(), path.read_bytes(), 0o644))
    files.append((f"{NAME}-{version}.data/scripts/djinit", exe, 0o755))
    files.append((f"{dist_info}/METADATA", metadata(version).encode(), 0o644))
    wheel = "Wheel-Version: 1.0\nGenerator: djinit python/build_wheel.py\nRoot-Is-Purelib: false\n"
    wheel += "".join(f"Tag: {tag}\n" for tag in TAGS)
    files.append((f"{dist_info}/WHEEL", wheel.encode(), 0o644))
    record = [record_line(name, data) for name, data, _ in files]
    record.append(f"{dist_info}/RECORD,,")
    files.append((f"{dist_info}/RECORD", ("\n".join(record) + "\n").encode(), 0o644))

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name, data, mode in files:
            info = zipfile.ZipInfo(name, EPOCH)
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    platform = ".".join(tag.split("-", 2)[2] for tag in TAGS)
    return f"{NAME}-{version}-py3-none-{platform}.whl", out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--binary", required=True, type=pathlib.Path)
    parser.add_argument("--version", required=True)
    parser.add_argument("--out-dir", required=True, type=pathlib.Path)
    args = parser.parse_args()
    name, data = build(args.binary, args.version)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    out = args.out_dir / name
    if not (out.exists() and out.read_bytes() == data):
        out.write_bytes(data)
    print(out)


if __name__ == "__main__":
    main()
