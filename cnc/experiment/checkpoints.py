"""Where model files live: a local path, or an fsspec URL (s3://, gs://, https://, file://) that
precompute workers on other machines can open too. fsspec is imported only for URLs."""
from __future__ import annotations

import os
from typing import BinaryIO


def is_url(source: str) -> bool:
    return "://" in source


def open_checkpoint(source: str) -> BinaryIO:
    """A checkpoint path or URL opened for reading, for a task's `load_model`:
    `with open_checkpoint(checkpoint) as f: state = torch.load(f, weights_only=True)`."""
    if not is_url(source):
        return open(source, "rb")
    import fsspec

    return fsspec.open(source, "rb").open()


def readable(source: str) -> bool:
    """Can this process open the file (or the object a URL names, or a model directory)?"""
    if is_url(source):
        try:
            import fsspec

            fs, path = fsspec.core.url_to_fs(source)
            return fs.isfile(path)
        except Exception:  # unknown protocol, missing driver, no credentials: all unreadable
            return False
    if os.path.isdir(source):
        return os.access(source, os.R_OK | os.X_OK)
    return os.path.isfile(source) and os.access(source, os.R_OK)
