"""Listing an image folder's files: every image counted once, symlinks never looping.

The rules (docs/datasets.md, "Image folders and symlinks"):

* A symlink to a directory is followed when it leads outside the image folder (data kept on
  another disk). One that leads back inside the folder (its own class, another class, a
  parent, the other split) is refused, naming it: following it would count images twice or
  under another class's label.
* Each real directory and each real image file is reached once per split: a second path to
  one (two links to one directory, a link to a file already listed) is refused, naming both.
* A symlink that is broken or resolves to itself (a loop) is refused, naming it.

Only symlinks and directories are resolved (``os.path.realpath``); a plain file's real path
is its directory's real path plus its name, so a large tree costs one ``realpath`` per
directory.
"""

from __future__ import annotations

import os

from ..errors import DatasetError

__all__ = ["FolderWalker"]


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


class FolderWalker:
    """Lists the image files of one split of the image folder at ``folder``."""

    def __init__(self, folder: str, split_dir: str, extensions: tuple[str, ...]) -> None:
        self.folder = folder
        self.extensions = extensions
        self.roots = {os.path.realpath(folder), os.path.realpath(split_dir)}
        self.dirs: dict[str, str] = {}  # real directory -> the path it was reached by
        self.files: dict[str, str] = {}  # real file -> the path it was reached by

    def refuse(self, path: str, why: str) -> DatasetError:
        return DatasetError(f"imagefolder {self.folder!r}: {path!r} {why}")

    def resolve(self, path: str) -> str:
        """The real path of the symlink ``path``; broken links and loops are refused."""
        try:
            return os.path.realpath(path, strict=True)
        except OSError as exc:
            why = exc.strerror or type(exc).__name__
            raise self.refuse(path, f"is a broken or looping symlink ({why})") from None

    def class_dirs(self, split_dir: str) -> list[str]:
        """The class folders of ``split_dir`` (sorted; hidden entries skipped)."""
        names = []
        with os.scandir(split_dir) as found:
            entries = sorted(found, key=lambda e: e.name)
        for e in entries:
            if e.name.startswith("."):
                continue
            if e.is_symlink():
                self.resolve(e.path)
            if e.is_dir():
                names.append(e.name)
        return sorted(names)

    def enter(self, path: str, real: str, linked: bool) -> None:
        """Record directory ``path`` (real path ``real``); refuse a second path to it and a
        symlink that leads back into the image folder."""
        if linked and any(_under(real, root) for root in self.roots):
            raise self.refuse(
                path,
                f"is a symlink to {real!r}, inside the image folder: it would count images "
                "twice or under another class (link only to folders outside it)",
            )
        if real in self.dirs:
            raise self.refuse(path, f"and {self.dirs[real]!r} are the same folder {real!r}")
        self.dirs[real] = path

    def class_files(self, class_dir: str) -> list[str]:
        """The images under ``class_dir`` (recursive, hidden entries skipped), as POSIX
        paths relative to it, sorted."""
        linked = os.path.islink(class_dir)
        real = self.resolve(class_dir) if linked else os.path.realpath(class_dir)
        self.enter(class_dir, real, linked)
        found: list[str] = []
        stack = [(class_dir, real, "")]
        while stack:
            here, real_here, rel_here = stack.pop()
            with os.scandir(here) as listing:
                entries = sorted(listing, key=lambda e: e.name)
            for e in entries:
                if e.name.startswith("."):
                    continue
                rel = e.name if not rel_here else f"{rel_here}/{e.name}"
                link = e.is_symlink()
                target = self.resolve(e.path) if link else os.path.join(real_here, e.name)
                if e.is_dir():
                    self.enter(e.path, target, link)
                    stack.append((e.path, target, rel))
                elif e.name.lower().endswith(self.extensions):
                    if target in self.files:
                        raise self.refuse(
                            e.path, f"and {self.files[target]!r} are the same file {target!r}"
                        )
                    self.files[target] = e.path
                    found.append(rel)
        return sorted(found)
