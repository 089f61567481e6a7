"""A batch's plan: its inputs (expanded by ``alphacut.inputs``, the rules every entry point
shares), each with a distinct output name inside the output folder or ZIP."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import UsageError
from ..fsutil import same_file
from ..imageio.formats import DocumentOptions
from ..inputs import Item, distinct_outputs, expand, mirror
from ..objstore import is_uri


@dataclass
class BatchItem:
    """One input of a batch and its output's name inside the output folder or ZIP (posix)."""

    input: Item
    output_rel: str


def plan_batch(inputs: list[str], output: Path | str, ext: str, keep: dict[str, str] | None = None, *,
               documents: DocumentOptions | None = None, notes: list[str] | None = None,
               ext_for: Callable[[Item], str] | None = None) -> list[BatchItem]:
    """The batch's inputs (expanded by `inputs.expand`, the rules every entry point shares),
    each with its distinct output name under the output folder, ZIP or object-store prefix.

    ``keep``: names decided by an earlier run of this batch, by source id (``--resume``).
    An object-store output's own prefix is never read as input (as an output folder is not).
    """
    if is_uri(str(output)):
        prefix = str(output).rstrip("/") + "/"
        found = [i for i in expand(inputs, documents=documents, notes=notes)
                 if not (i.uri is not None and i.uri.startswith(prefix))]
        on_disk = None
    else:
        output = Path(output)
        to_zip = output.suffix.lower() == ".zip"
        found = expand(inputs, exclude=None if to_zip else output, documents=documents, notes=notes)
        if to_zip:  # never read the archive being written
            found = [i for i in found if not (i.path is not None and same_file(i.path, output))]
        on_disk = None if to_zip else output
    if not found:
        raise UsageError("no images found in the given inputs")
    wanted = mirror(ext) if ext_for is None else (lambda item: mirror(ext_for(item))(item))
    names = distinct_outputs(found, wanted, on_disk=on_disk, keep=keep)
    return [BatchItem(i, names[i.source_id]) for i in found]
