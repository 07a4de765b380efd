"""Atomic writes: readers see the old file or the new one, with ordinary permissions."""

import os

from fairleak.audit.cache import atomic_write_text


def test_atomic_write_replaces_whole_file_with_umask_permissions(tmp_path):
    path = tmp_path / "sub" / "results.json"
    old = os.umask(0o022)
    try:
        atomic_write_text(path, "first")
        atomic_write_text(path, "second")
    finally:
        os.umask(old)
    assert path.read_text() == "second"
    assert (path.stat().st_mode & 0o777) == 0o644  # shareable like any written file, not 0600
    assert [p.name for p in path.parent.iterdir()] == ["results.json"]  # no temp file left
