"""Conformance suite of the snapshot stores: every backend passes the same tests."""

from __future__ import annotations

import hashlib

import pytest
import torch

from tworail.governance import InMemorySnapshotStore, LocalFolderSnapshotStore, SnapshotCorrupted, SnapshotNotFound
from tworail.governance.snapshots import apply_delta, canonical_bytes, compute_delta, state_id, states_equal


def corrupt_folder(store, object_id):
    path = store._path(object_id)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def corrupt_memory(store, object_id):
    data = bytearray(store._objects[object_id])
    data[-1] ^= 0xFF
    store._objects[object_id] = bytes(data)


@pytest.fixture(params=["folder", "memory"])
def backend(request, tmp_path):
    if request.param == "folder":
        return LocalFolderSnapshotStore(tmp_path / "snapshots"), corrupt_folder
    return InMemorySnapshotStore(), corrupt_memory


def sample_state(seed=0):
    generator = torch.Generator().manual_seed(seed)
    return {"b.w_down": torch.randn(8, 4, generator=generator), "a.w_up": torch.randn(4, 8, generator=generator)}


def test_put_get_round_trip_is_bit_exact(backend):
    store, _ = backend
    state = sample_state()
    object_id = store.put(state)
    assert states_equal(store.get(object_id), state)


def test_id_is_sha256_of_canonical_bytes(backend):
    store, _ = backend
    state = sample_state()
    object_id = store.put(state)
    assert object_id == hashlib.sha256(canonical_bytes(state)).hexdigest()
    assert object_id == state_id(dict(reversed(list(state.items()))))


def test_put_twice_stores_once(backend):
    store, _ = backend
    first = store.put(sample_state())
    second = store.put(sample_state())
    assert first == second
    assert list(store.ids()) == [first]


def test_different_states_get_different_ids(backend):
    store, _ = backend
    assert store.put(sample_state(0)) != store.put(sample_state(1))


def test_delete_removes_object(backend):
    store, _ = backend
    object_id = store.put(sample_state())
    assert store.delete(object_id)
    assert not store.has(object_id)
    assert not store.delete(object_id)
    with pytest.raises(SnapshotNotFound, match="not in the store"):
        store.get(object_id)


def test_corrupted_bytes_are_detected(backend):
    store, corrupt = backend
    object_id = store.put(sample_state())
    corrupt(store, object_id)
    with pytest.raises(SnapshotCorrupted, match="no longer matches"):
        store.get(object_id)


def test_stored_delta_replays_bit_exact(backend):
    store, _ = backend
    old, new = sample_state(0), sample_state(1)
    delta_id = store.put(compute_delta(old, new))
    base_id = store.put(old)
    replayed = apply_delta(store.get(base_id), store.get(delta_id))
    assert states_equal(replayed, apply_delta(old, compute_delta(old, new)))


def test_old_plus_difference_need_not_equal_new():
    # The reason commits install old + delta rather than new: float32 addition does not undo subtraction.
    old = {"w": torch.tensor([0.1, 1e8, 3.3], dtype=torch.float32)}
    new = {"w": torch.tensor([0.7, 1.0, 1e-8], dtype=torch.float32)}
    assert not states_equal(apply_delta(old, compute_delta(old, new)), new)


def test_folder_rejects_malformed_id(tmp_path):
    store = LocalFolderSnapshotStore(tmp_path)
    with pytest.raises(SnapshotNotFound, match="64 lowercase hex"):
        store.get("../../etc/passwd")
