"""Build the Function Compute code package: handler.py, esa_scheduler/, schedule/ and the runtime deps.

    python scripts/package.py                          # what `make package` runs: Linux wheels for FC
    python scripts/package.py --python-version 3.12    # for a python3.12 runtime instead
    python scripts/package.py --deps-from-env          # offline: copy the deps installed in this interpreter

By default the dependencies in requirements.txt are installed with pip for the FC runtime's platform
(manylinux2014_x86_64, CPython 3.10, binary wheels only), so the zip runs on FC whatever machine built
it; dependencies that only the target Python needs (pip evaluates markers for the interpreter running
it) are added afterwards. ``--deps-from-env`` copies the already-installed distributions (and their
dependencies) from the running interpreter instead: no network, same platform and Python only, which
is what the packaging test uses.

The zip is reproducible: entries sorted, fixed timestamps and permissions, no bytecode caches, and
nothing from tests/ or bench/.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("handler.py", "esa_scheduler", "schedule")
DEFAULT_OUTPUT = Path("dist/esa-scheduler.zip")
DEFAULT_BUILD = Path("build/package")
PLATFORM = "manylinux2014_x86_64"
PYTHON_VERSION = "3.10"
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_SKIP_DIRS = frozenset({"__pycache__", "tests", "bench", ".mypy_cache", ".pytest_cache", ".ruff_cache"})
_SKIP_SUFFIXES = (".pyc", ".pyo")
_REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_LINUX_CPYTHON_MARKERS = {
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
}


def target_markers(python_version: str = PYTHON_VERSION) -> dict[str, str]:
    """Environment markers of FC's Linux CPython runtime, for the dependencies pip's markers miss."""
    return {**_LINUX_CPYTHON_MARKERS, "python_version": python_version, "python_full_version": f"{python_version}.0"}


class PackageError(Exception):
    """Something the build cannot work around (a missing source, a failed pip run)."""


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_names(requirements: Path) -> list[str]:
    """Distribution names listed in a requirements file (comments, options and markers ignored)."""
    names = []
    for line in requirements.read_text(encoding="utf-8").splitlines():
        stripped = line.split("#", 1)[0].strip()
        if not stripped or stripped.startswith("-"):
            continue
        match = _REQUIREMENT_NAME.match(stripped)
        if match:
            names.append(match.group(1))
    return names


def _pip_command(target: Path, python_version: str | None) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        "--target",
        str(target),
        "--only-binary=:all:",
    ]
    if python_version is not None:
        command += ["--platform", PLATFORM, "--implementation", "cp", "--python-version", python_version]
    return command


def _run_pip(command: list[str]) -> None:
    result = subprocess.run(command, check=False)
    if result.returncode != 0:
        raise PackageError(f"pip install failed (exit {result.returncode}): {' '.join(command)}")


def pip_install(requirements: Path, target: Path, python_version: str | None = PYTHON_VERSION) -> None:
    """Install the requirements into ``target`` as binary wheels for FC (``None``: for this interpreter).

    pip picks wheels for ``--python-version`` but evaluates environment markers against the
    interpreter running it, so a dependency needed only on the target's Python (``exceptiongroup``
    for anyio below 3.11, say) is silently left out. The installed tree is therefore checked against
    the target's markers and completed until nothing is missing.
    """
    _run_pip([*_pip_command(target, python_version), "-r", str(requirements)])
    if python_version is None:
        return
    for _ in range(10):
        missing = missing_requirements(target, target_markers(python_version))
        if not missing:
            return
        _run_pip([*_pip_command(target, python_version), "--no-deps", *missing])
    raise PackageError(f"dependencies still missing for python{python_version}: {missing}")


def _requirement(spec: str) -> Any:
    try:
        from packaging.requirements import Requirement
    except ImportError:  # pip always vendors a copy
        from pip._vendor.packaging.requirements import Requirement  # type: ignore[assignment]
    return Requirement(spec)


def _needed(spec: str, environment: dict[str, str] | None) -> Any:
    """The parsed requirement if it applies in ``environment`` (None: this interpreter), else None."""
    requirement = _requirement(spec)
    markers = {**(environment or {}), "extra": ""}
    if requirement.marker is None or requirement.marker.evaluate(markers):
        return requirement
    return None


def missing_requirements(target: Path, environment: dict[str, str]) -> list[str]:
    """Requirement strings that distributions in ``target`` need in ``environment`` but lack there."""
    dists = list(metadata.distributions(path=[str(target)]))
    present = {_normal(dist.metadata["Name"]) for dist in dists}
    missing: dict[str, str] = {}
    for dist in dists:
        for spec in dist.requires or ():
            requirement = _needed(spec, environment)
            if requirement is not None and _normal(requirement.name) not in present:
                missing.setdefault(_normal(requirement.name), f"{requirement.name}{requirement.specifier}")
    return [missing[name] for name in sorted(missing)]


def _dependency_names(dist: metadata.Distribution) -> Iterator[str]:
    """Names of the distributions ``dist`` needs in this environment (extras not requested are skipped)."""
    for spec in dist.requires or ():
        requirement = _needed(spec, None)
        if requirement is not None:
            yield requirement.name


def installed_closure(names: Iterable[str]) -> list[metadata.Distribution]:
    """The installed distributions for ``names`` and everything they depend on, each once."""
    seen: dict[str, metadata.Distribution] = {}
    pending = list(names)
    while pending:
        name = _normal(pending.pop())
        if name in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError as exc:
            raise PackageError(f"{name} is not installed in {sys.executable}") from exc
        seen[name] = dist
        pending.extend(_dependency_names(dist))
    return [seen[key] for key in sorted(seen)]


def copy_installed(names: Iterable[str], target: Path) -> None:
    """Copy the files of the installed distributions (and their dependencies) into ``target``."""
    for dist in installed_closure(names):
        base = Path(str(dist.locate_file("")))
        for relative in dist.files or ():
            parts = Path(relative).parts
            if not parts or parts[0] == ".." or Path(relative).is_absolute():
                continue  # console scripts and other files outside site-packages
            source = base / relative
            if not source.is_file() or _skipped(Path(relative)):
                continue
            destination = target / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, destination)


def _skipped(relative: Path) -> bool:
    return any(part in _SKIP_DIRS for part in relative.parts) or relative.name.endswith(_SKIP_SUFFIXES)


def _files_under(base: Path) -> Iterator[tuple[Path, str]]:
    """``(path, archive name)`` for every packaged file below ``base``, in a stable order."""
    for directory, subdirs, files in os.walk(base):
        subdirs[:] = sorted(d for d in subdirs if d not in _SKIP_DIRS)
        for name in sorted(files):
            path = Path(directory) / name
            relative = path.relative_to(base)
            if not _skipped(relative):
                yield path, relative.as_posix()


def _project_files(root: Path) -> Iterator[tuple[Path, str]]:
    for source in SOURCES:
        path = root / source
        if not path.exists():
            raise PackageError(f"{path} is missing: the package needs {', '.join(SOURCES)}")
        if path.is_file():
            yield path, source
        else:
            for file, name in _files_under(path):
                yield file, f"{source}/{name}"


def write_zip(output: Path, entries: Iterable[tuple[Path, str]]) -> None:
    """Write a reproducible zip: sorted names, fixed dates, 0644 files (0755 if executable)."""
    by_name: dict[str, Path] = {}
    for path, name in entries:
        if name in by_name:
            raise PackageError(f"{name} would be packaged twice ({by_name[name]} and {path})")
        by_name[name] = path
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name in sorted(by_name):
            path = by_name[name]
            info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
            mode = 0o755 if os.access(path, os.X_OK) and not name.endswith(".py") else 0o644
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    partial.replace(output)


def build(
    output: Path = DEFAULT_OUTPUT,
    build_dir: Path = DEFAULT_BUILD,
    *,
    deps_from_env: bool = False,
    python_version: str = PYTHON_VERSION,
    root: Path = ROOT,
) -> Path:
    """Build the zip at ``output`` (relative paths are taken from ``root``) and return its path."""
    output = output if output.is_absolute() else root / output
    deps = (build_dir if build_dir.is_absolute() else root / build_dir) / "deps"
    project = list(_project_files(root))  # fail on a missing source before the slow part
    shutil.rmtree(deps, ignore_errors=True)
    deps.mkdir(parents=True)
    requirements = root / "requirements.txt"
    if deps_from_env:
        copy_installed(requirement_names(requirements), deps)
    else:
        pip_install(requirements, deps, python_version)
    shutil.rmtree(deps / "bin", ignore_errors=True)  # console scripts pip puts next to a --target
    dependency_files = list(_files_under(deps))
    clashes = {name for _, name in dependency_files} & {name for _, name in project}
    if clashes:
        raise PackageError(f"dependencies would overwrite project files: {sorted(clashes)}")
    write_zip(output, [*project, *dependency_files])
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="zip to write (default: %(default)s)")
    parser.add_argument(
        "--build-dir", type=Path, default=DEFAULT_BUILD, help="scratch directory (default: %(default)s)"
    )
    parser.add_argument(
        "--deps-from-env",
        action="store_true",
        help="copy the dependencies installed in this interpreter instead of downloading FC's Linux wheels",
    )
    parser.add_argument(
        "--python-version",
        default=PYTHON_VERSION,
        help="CPython version of the FC runtime the wheels are for (default: %(default)s; python3.12 needs 3.12)",
    )
    args = parser.parse_args(argv)
    try:
        zip_path = build(
            args.output, args.build_dir, deps_from_env=args.deps_from_env, python_version=args.python_version
        )
    except PackageError as exc:
        print(f"package: {exc}", file=sys.stderr)
        return 1
    size = zip_path.stat().st_size
    with zipfile.ZipFile(zip_path) as archive:
        count = len(archive.namelist())
    print(f"{zip_path.relative_to(ROOT) if zip_path.is_relative_to(ROOT) else zip_path}: {count} files, {size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
