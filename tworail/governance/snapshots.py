"""Content-addressed snapshots of fast weights and of the deltas committed to them.

A state or a delta is a dict of float32 tensors. Its canonical bytes are the
safetensors serialization without metadata (safetensors orders tensors by
dtype and name, so the bytes do not depend on dict order), and its id is the
SHA-256 of those bytes. Commits apply W := W + delta with the stored delta,
so replaying the stored deltas from a stored state reproduces every later
state bit for bit; `new - old` is never stored in the hope that adding it
back gives `new`, because in float32 it need not.

`SnapshotStore` is the interface; `LocalFolderSnapshotStore` keeps one file
per object and `InMemorySnapshotStore` keeps bytes in a dict.
"""

from __future__ import annotations

import hashlib
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from pathlib import Path

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import Tensor

from tworail.governance.errors import SnapshotCorrupted, SnapshotNotFound
from tworail.governance.protocol import FastWeightState


def canonical_bytes(state: Mapping[str, Tensor]) -> bytes:
    """Return the safetensors bytes of `state` (CPU, contiguous, no metadata)."""
    return save_safetensors({name: value.detach().to("cpu").contiguous() for name, value in state.items()})


def state_id(state: Mapping[str, Tensor]) -> str:
    """Return the content id of `state`: the SHA-256 hex digest of its canonical bytes."""
    return hashlib.sha256(canonical_bytes(state)).hexdigest()


def compute_delta(old: Mapping[str, Tensor], new: Mapping[str, Tensor]) -> FastWeightState:
    """Return new - old per tensor; commit it with `apply_delta`, never by loading `new`."""
    if set(old) != set(new):
        raise ValueError(f"cannot diff fast weights with different names: {sorted(old)} vs {sorted(new)}")
    return {name: (new[name].detach() - old[name].detach()).contiguous() for name in sorted(old)}


def apply_delta(state: Mapping[str, Tensor], delta: Mapping[str, Tensor]) -> FastWeightState:
    """Return state + delta per tensor, the one way a commit changes the fast weights."""
    if set(state) != set(delta):
        raise ValueError(f"delta tensors {sorted(delta)} do not match the state's {sorted(state)}")
    return {name: (state[name] + delta[name]).contiguous() for name in sorted(state)}


def delta_norm(delta: Mapping[str, Tensor]) -> float:
    """Return the global L2 norm of a delta, summed in float64."""
    return float(torch.sqrt(sum((value.double().pow(2).sum() for value in delta.values()), torch.tensor(0.0))))


def changed_parameters(delta: Mapping[str, Tensor]) -> list[str]:
    """Return the names of the tensors a delta changes, sorted."""
    return sorted(name for name, value in delta.items() if bool(value.ne(0).any()))


def states_equal(first: Mapping[str, Tensor], second: Mapping[str, Tensor]) -> bool:
    """Return True when both states have the same names and bit-identical tensors."""
    return set(first) == set(second) and all(torch.equal(first[name], second[name]) for name in first)


class SnapshotStore(ABC):
    """A content-addressed store of fast-weight states and deltas."""

    @abstractmethod
    def _write(self, object_id: str, data: bytes) -> None: ...

    @abstractmethod
    def _read(self, object_id: str) -> bytes | None: ...

    @abstractmethod
    def delete(self, object_id: str) -> bool:
        """Delete an object; return False when it was not stored."""

    @abstractmethod
    def ids(self) -> Iterator[str]:
        """Yield the ids of every stored object."""

    def put(self, state: Mapping[str, Tensor]) -> str:
        """Store `state` (a snapshot or a delta) and return its content id; storing twice is a no-op."""
        data = canonical_bytes(state)
        object_id = hashlib.sha256(data).hexdigest()
        if not self.has(object_id):
            self._write(object_id, data)
        return object_id

    def get(self, object_id: str) -> FastWeightState:
        """Return the stored tensors of `object_id`, after checking that they still hash to it."""
        data = self._read(object_id)
        if data is None:
            raise SnapshotNotFound(f"snapshot {object_id!r} is not in the store; it was never written or was "
                                   "deleted by an unlearn")
        if hashlib.sha256(data).hexdigest() != object_id:
            raise SnapshotCorrupted(f"snapshot {object_id!r} no longer matches its content id: the stored bytes "
                                    "were changed or damaged")
        return dict(load_safetensors(data))

    def has(self, object_id: str) -> bool:
        """Return True when `object_id` is stored."""
        return self._read(object_id) is not None


class InMemorySnapshotStore(SnapshotStore):
    """A snapshot store in process memory; thread-safe."""

    def __init__(self) -> None:
        self._objects: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def _write(self, object_id: str, data: bytes) -> None:
        with self._lock:
            self._objects[object_id] = data

    def _read(self, object_id: str) -> bytes | None:
        with self._lock:
            return self._objects.get(object_id)

    def delete(self, object_id: str) -> bool:
        """Delete an object; return False when it was not stored."""
        with self._lock:
            return self._objects.pop(object_id, None) is not None

    def ids(self) -> Iterator[str]:
        """Yield the ids of every stored object."""
        with self._lock:
            return iter(sorted(self._objects))


class LocalFolderSnapshotStore(SnapshotStore):
    """A snapshot store in a folder: `<root>/<id[:2]>/<id>.safetensors`, written atomically."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, object_id: str) -> Path:
        if len(object_id) != 64 or any(c not in "0123456789abcdef" for c in object_id):
            raise SnapshotNotFound(f"{object_id!r} is not a snapshot id; expected 64 lowercase hex digits")
        return self.root / object_id[:2] / f"{object_id}.safetensors"

    def _write(self, object_id: str, data: bytes) -> None:
        path = self._path(object_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        # The rename is atomic, so a reader sees either no object or the whole object.
        os.replace(tmp, path)

    def _read(self, object_id: str) -> bytes | None:
        try:
            return self._path(object_id).read_bytes()
        except FileNotFoundError:
            return None

    def has(self, object_id: str) -> bool:
        """Return True when `object_id` is stored (checks the file, reads nothing)."""
        return self._path(object_id).exists()

    def delete(self, object_id: str) -> bool:
        """Delete an object; return False when it was not stored."""
        try:
            self._path(object_id).unlink()
        except FileNotFoundError:
            return False
        return True

    def ids(self) -> Iterator[str]:
        """Yield the ids of every stored object."""
        return iter(sorted(path.name.removesuffix(".safetensors") for path in self.root.glob("*/*.safetensors")))
