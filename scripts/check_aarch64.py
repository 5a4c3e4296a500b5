#!/usr/bin/env python3
"""Checks that every file named is a 64-bit little-endian ELF for aarch64 (Lambda's arm64), as
template.yaml deploys: reads the ELF header itself, so it needs no `file` command.

    python3 scripts/check_aarch64.py .aws-sam/build/SyncFunction/bootstrap ...

Prints one line per file and exits 1 if any is missing or is not an aarch64 ELF."""

import struct
import sys

EM_NAMES = {3: "x86 (32-bit)", 40: "arm (32-bit)", 62: "x86_64", 183: "aarch64", 243: "riscv"}
EM_AARCH64 = 183


def describe(path: str) -> str | None:
    """None if `path` is an aarch64 ELF, else what it is instead."""
    try:
        with open(path, "rb") as f:
            header = f.read(20)
    except OSError as e:
        return f"cannot be read ({e.strerror})"
    if len(header) < 20 or header[:4] != b"\x7fELF":
        return "not an ELF file"
    ei_class, ei_data = header[4], header[5]
    if ei_data not in (1, 2):
        return f"an ELF file of unknown byte order ({ei_data})"
    (machine,) = struct.unpack("<H" if ei_data == 1 else ">H", header[18:20])
    if machine != EM_AARCH64:
        return f"an ELF file for {EM_NAMES.get(machine, f'machine {machine}')}"
    if ei_class != 2 or ei_data != 1:
        return "an aarch64 ELF file, but not 64-bit little-endian"
    return None


def main(paths: list[str]) -> int:
    if not paths:
        print("usage: check_aarch64.py FILE...", file=sys.stderr)
        return 2
    failed = 0
    for path in paths:
        problem = describe(path)
        if problem is None:
            print(f"{path}: ELF 64-bit aarch64")
        else:
            print(f"{path}: {problem}, not the aarch64 ELF that template.yaml deploys (arm64)")
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
