"""Reading HDF5 model files without trusting them: string-list attributes in Keras' split
form, and the scan for content that reads other files (never following it).

Keras stores long string lists (``layer_names``, ``weight_names``) in one attribute, or,
when they exceed HDF5's 64 KiB attribute limit, split over ``name0``, ``name1``, ...;
every reader here handles both.
"""

from __future__ import annotations

from typing import Any, Callable

from modelport.core.text import to_text

__all__ = ["has_names", "read_names", "write_names", "unsafe_content"]


def _chunks(attrs: Any, name: str) -> list[str]:
    keys = []
    chunk = 0
    while f"{name}{chunk}" in attrs:
        keys.append(f"{name}{chunk}")
        chunk += 1
    return keys


def has_names(attrs: Any, name: str) -> bool:
    """Whether ``attrs`` holds the string list ``name`` (whole or split)."""
    return name in attrs or f"{name}0" in attrs


def read_names(attrs: Any, name: str) -> list[str]:
    """A Keras string-list attribute, whole or split over ``name0``, ``name1``, ...

    ``attrs`` is an h5py ``AttributeManager`` (``group.attrs``); ``[]`` when absent.
    """
    if name in attrs:
        values = list(attrs[name])
    else:
        values = [v for key in _chunks(attrs, name) for v in attrs[key]]
    return [to_text(v) for v in values]


# HDF5 refuses attributes over 64 KiB in an object header; Keras splits below this
HEADER_LIMIT = 64512


def write_names(attrs: Any, name: str, values: list[str]) -> None:
    """Replace the string list ``name`` (dropping any split parts) with ``values``, split
    over ``name0``, ``name1``, ... as Keras does when one attribute would be too large."""
    import numpy as np

    for key in [k for k in attrs if k == name or
                (k.startswith(name) and k[len(name):].isdigit())]:
        del attrs[key]
    data = np.array([v.encode("utf8") for v in values])
    if data.nbytes <= HEADER_LIMIT:
        attrs[name] = data
        return
    chunks = 2
    while True:
        parts = np.array_split(data, chunks)
        if all(p.nbytes <= HEADER_LIMIT for p in parts):
            break
        chunks += 1
    for i, part in enumerate(parts):
        attrs[f"{name}{i}"] = part


def unsafe_content(f: Any) -> list[str]:
    """External links, external storage and virtual datasets in an open ``h5py.File``,
    found by walking the links ourselves (an external link is never followed)."""
    import h5py

    problems: list[str] = []

    def visit(name: str, link: Any) -> None:
        if isinstance(link, h5py.ExternalLink):
            problems.append(f"external link /{name} -> {link.filename}:{link.path}")
            return
        if isinstance(link, h5py.SoftLink):
            return  # points inside this file; targets are visited on their own
        obj = f.get(name, getlink=False)
        if isinstance(obj, h5py.Dataset):
            if obj.is_virtual:
                sources = {s.file_name for s in obj.virtual_sources()}
                problems.append(f"virtual dataset /{name} (reads {sorted(sources)})")
            elif obj.external:
                files = [e[0] for e in obj.external]
                problems.append(f"dataset /{name} stored in external file(s) {files}")

    _visit_links(f, visit)
    return problems


def _visit_links(f: Any, fn: Callable[[str, Any], None]) -> None:
    """``visititems_links`` where h5py has it; else a manual walk that never follows
    external links."""
    if hasattr(f, "visititems_links"):
        f.visititems_links(fn)
        return
    import h5py

    def walk(group: Any, prefix: str) -> None:
        for key in group.keys():
            link = group.get(key, getlink=True)
            name = f"{prefix}{key}"
            fn(name, link)
            if isinstance(link, h5py.HardLink) and isinstance(group.get(key), h5py.Group):
                walk(group[key], name + "/")

    walk(f, "")
