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


def test_stage_cache_round_trip_damage_and_read_write_flags(tmp_path):
    import numpy as np

    from fairleak.audit.cache import StageCache

    cache = StageCache(tmp_path)
    arrays = {"logits": np.arange(6.0).reshape(3, 2), "privacy": np.array('{"epsilon": [1.5]}')}
    assert cache.get_arrays("models", "k1") is None
    cache.put_arrays("models", "k1", arrays)
    got = cache.get_arrays("models", "k1")
    assert got is not None and cache.hits == 1
    np.testing.assert_array_equal(got["logits"], arrays["logits"])
    assert str(got["privacy"]) == '{"epsilon": [1.5]}'
    # a damaged entry is recomputed, never trusted
    (tmp_path / "models" / "k1.npz").write_bytes(b"not a zip file")
    assert cache.get_arrays("models", "k1") is None
    # read=False ignores what is there but refreshes it; write=False leaves the folder alone
    cache.put_arrays("models", "k2", arrays)
    assert StageCache(tmp_path, read=False).get_arrays("models", "k2") is None
    StageCache(tmp_path, write=False).put_arrays("models", "k3", arrays)
    assert not (tmp_path / "models" / "k3.npz").exists()
    # an entry that would need unpickling is refused
    np.savez(tmp_path / "models" / "k4.npz", obj=np.array([{"a": 1}], dtype=object))
    assert cache.get_arrays("models", "k4") is None


def test_named_seeds_are_stable_distinct_and_32_bit():
    from fairleak.audit.seeds import named_seed

    names = ["split", "target", "references", "reference masks", "shadows", "pa_alooa"]
    seeds = [named_seed(0, n) for n in names]
    assert len(set(seeds)) == len(seeds)
    assert seeds == [named_seed(0, n) for n in names]  # the same on every call and run
    assert named_seed(1, "split") != named_seed(0, "split")
    assert named_seed(0, "attack bootstrap", "a") != named_seed(0, "attack bootstrap", "b")
    assert all(0 <= s < 2**32 for s in seeds)
