"""Read a Debian package's copyright file and summarise its License fields.

Debian's machine-readable copyright format (DEP-5, copyright-format 1.0) is
parsed with python-debian's `debian.copyright`. Older free-form files are
reported as not machine-readable.
"""

from __future__ import annotations

import io
import logging
import subprocess
import tarfile
from pathlib import Path

from debian.copyright import Copyright, Error as CopyrightFormatError, NotMachineReadableError

from tworail.rails.ttt.debian_packages import AptCommandError

logger = logging.getLogger(__name__)


def read_copyright_file(deb_path: Path, package: str, *, dpkg_deb: str = "dpkg-deb") -> str | None:
    """Return the text of `usr/share/doc/PACKAGE/copyright` inside a .deb, or None when it has none.

    The data archive is streamed from `dpkg-deb --fsys-tarfile` and reading stops
    at the copyright file, so nothing is unpacked to disk. A copyright file that
    is a symbolic link (to another package's) counts as missing.
    """
    member_names = {f"./usr/share/doc/{package}/copyright", f"usr/share/doc/{package}/copyright"}
    command = [dpkg_deb, "--fsys-tarfile", str(deb_path)]
    try:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    except FileNotFoundError as error:
        raise AptCommandError(f"cannot run {dpkg_deb!r}: executable not found. Install dpkg") from error
    with process:
        try:
            with tarfile.open(fileobj=process.stdout, mode="r|") as archive:
                for member in archive:
                    if member.name in member_names and member.isfile():
                        handle = archive.extractfile(member)
                        return handle.read().decode("utf-8", errors="replace") if handle else None
        except tarfile.ReadError as error:
            raise AptCommandError(f"`{' '.join(command)}` gave no readable tar archive ({error}). Is it a .deb?") from error
        finally:
            process.kill()
    return None


def license_summary(text: str | None) -> dict[str, object]:
    """Return the License fields of a copyright file for the manifest.

    Keys: 'machine_readable' (bool), and 'reason' when it is false. When it is
    true, also 'format' (the Format URL), 'files_license' (the License of the
    `Files: *` paragraph, None when there is none) and 'licenses' (every
    distinct License synopsis, sorted).
    """
    if text is None:
        return {"machine_readable": False, "reason": "no copyright file"}
    try:
        parsed = Copyright(io.StringIO(text), strict=False)
    except NotMachineReadableError:
        return {"machine_readable": False, "reason": "free-form copyright file"}
    except (CopyrightFormatError, ValueError) as error:
        logger.warning("invalid machine-readable copyright file: %s", error)
        return {"machine_readable": False, "reason": f"invalid: {error}"}
    files_license = None
    synopses = set()
    for paragraph in parsed.all_files_paragraphs():
        if paragraph.license is None:
            continue
        synopses.add(paragraph.license.synopsis)
        if "*" in paragraph.files and files_license is None:
            files_license = paragraph.license.synopsis
    return {
        "machine_readable": True,
        "format": parsed.header.format,
        "files_license": files_license,
        "licenses": sorted(synopses),
    }
