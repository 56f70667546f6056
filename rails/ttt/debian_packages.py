"""Download Debian binary packages with apt and record what was fetched.

`download_packages` runs `apt-get download NAME` for each name and reads the
package name and version back from the .deb's control data with `dpkg-deb -f`.
Each `PackageRecord` stores the file name, size and SHA-256 as well, because
Debian point releases replace a package's version and bytes under the same
name, so a corpus is reproducible only together with these fields.
"""

from __future__ import annotations

import hashlib
import logging
import subprocess
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from tqdm import tqdm

logger = logging.getLogger(__name__)


class DebianCorpusError(RuntimeError):
    """Base class of the errors raised while building the Debian documentation corpus."""


class PackageNotFoundError(DebianCorpusError):
    """Raised when apt has no candidate version of a requested package."""

    def __init__(self, name: str, detail: str = "") -> None:
        self.name = name
        """The package name that apt could not locate."""
        message = (
            f"Debian package {name!r} not found: apt has no candidate version for it. "
            "Check the spelling with `apt-cache search`, or choose a package that this release serves"
        )
        super().__init__(f"{message} ({detail})" if detail else message)


class AptCommandError(DebianCorpusError):
    """Raised when apt-get, apt-cache or dpkg-deb fails for a reason other than a missing package."""


@dataclass(frozen=True)
class PackageRecord:
    """One downloaded .deb file, as recorded in the corpus manifest."""

    name: str
    """Binary package name from the control field `Package`."""
    version: str
    """Full Debian version from the control field `Version`, epoch included (for example '1:2.39.5-0+deb12u3')."""
    architecture: str
    """Control field `Architecture`, for example 'all'."""
    filename: str
    """Name of the .deb file inside the download folder."""
    bytes: int
    """Size of the .deb file in bytes."""
    sha256: str
    """Hex SHA-256 digest of the .deb file."""

    def to_json(self) -> dict[str, object]:
        """Return the record as a JSON-ready dict."""
        return asdict(self)


def sha256_file(path: Path) -> str:
    """Return the hex SHA-256 digest of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def run_command(command: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command and capture its output. Raise AptCommandError when the executable is missing."""
    try:
        return subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError as error:
        raise AptCommandError(
            f"cannot run {command[0]!r}: executable not found. Install apt and dpkg, or pass the executable's path"
        ) from error


def has_candidate(name: str, *, apt_cache: str = "apt-cache") -> bool:
    """Return whether `apt-cache policy NAME` shows a candidate version for the package.

    apt-cache prints nothing for a name missing from the package lists and
    'Candidate: (none)' for a name that no configured source serves.
    """
    result = run_command([apt_cache, "policy", name])
    if result.returncode != 0:
        raise AptCommandError(f"`{apt_cache} policy {name}` failed with exit status {result.returncode}: {result.stderr.strip()}")
    for line in result.stdout.splitlines():
        key, _, value = line.strip().partition(":")
        if key == "Candidate":
            return value.strip() not in ("", "(none)")
    return False


def update_package_lists(*, apt_get: str = "apt-get") -> None:
    """Run `apt-get update` to fetch the package lists (needs root)."""
    logger.info("running `%s update` to fetch the package lists", apt_get)
    result = run_command([apt_get, "update"])
    if result.returncode != 0:
        raise AptCommandError(
            f"`{apt_get} update` failed with exit status {result.returncode}: {result.stderr.strip()}. "
            "It needs root and access to the Debian archive"
        )


def control_field(deb_path: Path, field: str, *, dpkg_deb: str = "dpkg-deb") -> str:
    """Return one field of a .deb's control data, read with `dpkg-deb -f`."""
    result = run_command([dpkg_deb, "-f", str(deb_path), field])
    if result.returncode != 0:
        raise AptCommandError(f"`{dpkg_deb} -f {deb_path} {field}` failed: {result.stderr.strip()}. Is it a valid .deb?")
    return result.stdout.strip()


def _downloaded_file(name: str, dest: Path, before: dict[Path, float]) -> Path:
    """Return the .deb that `apt-get download NAME` just wrote into dest.

    apt names the file NAME_VERSION_ARCH.deb with the epoch's colon written as
    '%3a', so the newest file matching NAME_*.deb (new or rewritten) is taken.
    """
    candidates = [path for path in dest.glob(f"{name}_*.deb") if before.get(path) != path.stat().st_mtime]
    if not candidates:
        candidates = list(dest.glob(f"{name}_*.deb"))
    if not candidates:
        raise AptCommandError(f"apt-get download {name} exited 0 but wrote no {name}_*.deb into {dest}")
    return max(candidates, key=lambda path: path.stat().st_mtime)


def download_package(name: str, dest: Path, *, apt_get: str = "apt-get") -> PackageRecord:
    """Download one package into dest with `apt-get download` and return its record."""
    before = {path: path.stat().st_mtime for path in dest.glob("*.deb")}
    result = run_command([apt_get, "download", name], cwd=dest)
    if result.returncode != 0:
        error = result.stderr.strip()
        if "Unable to locate package" in error or "has no installation candidate" in error:
            raise PackageNotFoundError(name, error)
        raise AptCommandError(f"`{apt_get} download {name}` failed with exit status {result.returncode}: {error}")
    deb_path = _downloaded_file(name, dest, before)
    package = control_field(deb_path, "Package")
    if package != name:
        raise AptCommandError(f"{deb_path.name} contains package {package!r}, not the requested {name!r}")
    return PackageRecord(
        name=package,
        version=control_field(deb_path, "Version"),
        architecture=control_field(deb_path, "Architecture"),
        filename=deb_path.name,
        bytes=deb_path.stat().st_size,
        sha256=sha256_file(deb_path),
    )


def download_packages(
    names: Iterable[str],
    dest: Path,
    *,
    apt_get: str = "apt-get",
    apt_cache: str = "apt-cache",
    progress: bool = True,
) -> list[PackageRecord]:
    """Download each named binary package into dest and return one record per package, in order.

    When `apt-cache policy` shows no candidate for a name, the package lists are
    refreshed once with `apt-get update` (a new machine has none) before the
    name is given up on. Raises PackageNotFoundError naming the first package
    that apt cannot locate, and AptCommandError when apt or dpkg-deb fail otherwise.
    """
    names = list(names)
    if not names:
        raise ValueError("no package names given; pass at least one Debian binary package name")
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    updated = False
    records = []
    for name in tqdm(names, desc="apt-get download", unit="package", disable=not progress):
        if not has_candidate(name, apt_cache=apt_cache):
            if updated:
                raise PackageNotFoundError(name, "no candidate after `apt-get update`")
            logger.info("apt-cache policy shows no candidate for %s; updating the package lists", name)
            update_package_lists(apt_get=apt_get)
            updated = True
            if not has_candidate(name, apt_cache=apt_cache):
                raise PackageNotFoundError(name, "no candidate after `apt-get update`")
        record = download_package(name, dest, apt_get=apt_get)
        logger.info("downloaded %s %s (%d bytes, sha256 %s)", record.name, record.version, record.bytes, record.sha256)
        records.append(record)
    return records
