"""moto's server, with one change that only makes it faster: an object's bytes are read from
moto's spooled temporary file once and kept, instead of on every GET. moto answers a ranged GET by
reading the whole object and slicing it, so a copy that reads a 1 GiB object in 64 ranges made
moto read 64 GiB (about 0.6 s a range, one at a time under the GIL): the local stack's S3 could
serve about 25 MiB/s of ranges, far below what it stands in for. The kept bytes are dropped when
the object's value is set again (moto's only way to write it; a new version is a new object).

Usage: python moto_server.py [moto_server's arguments]"""

import sys

from moto.s3.models import FakeKey
from moto.server import main

_read, _write = FakeKey.value.fget, FakeKey.value.fset


def _value(self) -> bytes:
    kept = self.__dict__.get("_kept_value")
    if kept is None:
        kept = _read(self)
        self.__dict__["_kept_value"] = kept
    return kept


def _set_value(self, new_value) -> None:
    self.__dict__.pop("_kept_value", None)
    _write(self, new_value)


FakeKey.value = property(_value, _set_value)

if __name__ == "__main__":
    sys.exit(main())
