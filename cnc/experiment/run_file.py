"""The Tracker's run file seals what it wrote: a first line saying so and a last line with a
checksum of everything above it and the number of models.

Why: a run file cut short (a disk filled up, a copy interrupted) can still be valid YAML, listing
12 of 20 models; a Tracker that read it and wrote it back made the loss permanent. With the seal,
a cut file (header but no last line) and a file changed by someone else (checksum differs) are
told apart from the Tracker's own writes, so the Tracker refuses to write over them and the app
warns when it opens a cut one. Files without the header (hand-written, or from older versions)
carry no promise and are read as they are.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

HEADER = "# Written by cnc.Tracker; the last line is a checksum of this file (README: Input limits and the Tracker).\n"
_SEAL = re.compile(r"# cnc.Tracker sha256=([0-9a-f]{64}) models=(\d+)\n?\Z")


def seal(body: str, models: int) -> str:
    """The file text: header, body, then the checksum line."""
    text = HEADER + body if not body.startswith(HEADER) else body
    return text + f"# cnc.Tracker sha256={_digest(text)} models={models}\n"


@dataclass(frozen=True)
class SealCheck:
    """What a run file's seal says: `problem` is None (intact or unsealed), 'cut' or 'edited'."""

    problem: str | None
    sealed: bool
    models: int | None = None  # models the Tracker last wrote, when the seal line is there

    def describe(self, path: object) -> str:
        if self.problem == "cut":
            return (f"{path} was cut short: it starts with the Tracker's header but its last line, the checksum, "
                    f"is missing, so models logged at its end may be gone")
        if self.problem == "edited":
            return (f"{path} was changed after the Tracker last wrote it (with {self.models} model(s)): its "
                    f"content no longer matches the checksum on its last line")
        return f"{path} is intact"


def check_seal(text: str) -> SealCheck:
    if not text.startswith(HEADER):
        return SealCheck(None, sealed=False)
    last = text.rfind("# cnc.Tracker sha256=")
    found = _SEAL.match(text, last) if last >= 0 else None
    if found is None:
        return SealCheck("cut", sealed=True)
    models = int(found.group(2))
    if _digest(text[:last]) != found.group(1):
        return SealCheck("edited", sealed=True, models=models)
    return SealCheck(None, sealed=True, models=models)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
