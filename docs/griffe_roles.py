"""A griffe extension that lets mkdocstrings render lstmlab's reST-flavoured docstrings.

The docstrings are Google style ("Args:", "Returns:") with a few reStructuredText habits:

- Sphinx roles, ``:class:`~lstmlab.Stack```, ``:func:`.run```, ``:mod:`lstmlab.nn```: turned
  into cross-references (optional ones: a name that the reference does not document is shown as
  code, without a warning);
- literal blocks introduced by ``::`` and ``.. math::`` directives: turned into fenced code
  blocks (the equations stay readable as text, with no script needed to typeset them).

Registered in mkdocs.yml under the python handler's ``extensions``.
"""

from __future__ import annotations

import os
import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(class|func|meth|mod|data|attr|exc|obj|const):`(~?)([^`<>]+?)`")


# Module paths as they read before the package had subpackages; a reference that still names
# one is pointed at today's home (and shown under today's name).
_MOVED = {
    "lstmlab.nn.standard": "lstmlab.nn.layers.standard",
    "lstmlab.recurrent": "lstmlab.nn.recurrent",
    "lstmlab.stack": "lstmlab.nn.stack",
    "lstmlab.layers": "lstmlab.nn.layers",
    "lstmlab.cells": "lstmlab.nn.cells",
    "lstmlab.registry": "lstmlab.nn.registry",
    "lstmlab.regularizers": "lstmlab.nn.regularizers",
    "lstmlab.fused": "lstmlab.kernels",
    "lstmlab.attention": "lstmlab.models.attention",
    "lstmlab.seq2seq": "lstmlab.models.seq2seq",
    "lstmlab.language_model": "lstmlab.models.language_model",
    "lstmlab.sequence_model": "lstmlab.models.sequence_model",
    "lstmlab.generate": "lstmlab.models.generate",
    "lstmlab.settings": "lstmlab.train.settings",
    "lstmlab.jobs": "lstmlab.train.jobs",
    "lstmlab.checkpoint": "lstmlab.train.checkpoint",
    "lstmlab.stats": "lstmlab.study.stats",
    "lstmlab.study_cli": "lstmlab.study.cli",
    "lstmlab.study_params": "lstmlab.study.params",
    "lstmlab.study_runs": "lstmlab.study.runs",
    "lstmlab.study_table": "lstmlab.study.table",
    "lstmlab.demo": "lstmlab.cli.demo",
    "lstmlab.bench": "lstmlab.cli.bench",
}


def _module_of(obj: Any) -> Any:
    while obj is not None and not isinstance(obj, griffe.Module):
        obj = obj.parent
    return obj


def _find(path: str, collection: Any) -> str | None:
    """The documented path of the object at ``path`` (an import followed to its definition)."""
    try:
        found = collection[path]
    except Exception:  # noqa: BLE001 - any lookup failure means "not here"
        return None
    try:
        return found.final_target.path if found.is_alias else found.path
    except Exception:  # noqa: BLE001 - an alias whose target is outside the package
        return None


def _moved(path: str) -> str:
    for old in sorted(_MOVED, key=len, reverse=True):
        if path == old or path.startswith(old + "."):
            return _MOVED[old] + path[len(old) :]
    return path


def _resolve(target: str, obj: Any, collection: Any) -> tuple[str, bool]:
    """(full path, whether it names a documented object) for a role's target."""
    if target.startswith("."):  # relative to the module (a package: its submodules)
        module = _module_of(obj)
        base = module.path if module.is_init_module else module.path.rpartition(".")[0]
        for _ in range(len(target) - len(target.lstrip(".")) - 1):
            base = base.rpartition(".")[0]
        target = f"{base}.{target.lstrip('.')}"
    candidates = [target]
    scope = obj
    while scope is not None:  # a bare name, read where the docstring stands (Sphinx's rule)
        candidates.append(f"{scope.path}.{target}")
        scope = scope.parent
    candidates += [_moved(target), "lstmlab." + target.rsplit(".", 1)[-1]]
    for candidate in candidates:
        if (path := _find(candidate, collection)) is not None:
            return path, True
    return target, False


def _roles(text: str, obj: Any, collection: Any) -> str:
    optional = "" if os.environ.get("LSTMLAB_DOCS_STRICT_REFS") else " optional"

    def repl(m: re.Match) -> str:
        _, tilde, target = m.groups()
        target = re.sub(r"\s+", "", target).rstrip("()")
        path, found = _resolve(target, obj, collection)
        shown = target.lstrip(".")
        if found and target.startswith("lstmlab.") and _find(target, collection) is None:
            shown = path  # an old module path: show where the object lives now
        if tilde:
            shown = shown.rsplit(".", 1)[-1]
        return f'<autoref identifier="{path}"{optional}><code>{shown}</code></autoref>'

    return _ROLE.sub(repl, text)


def _literal_blocks(text: str) -> str:
    """``para::`` + indented block and ``.. math::`` + indented block -> fenced code blocks."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.rstrip()
        is_math = stripped.lstrip().startswith(".. math::")
        if is_math or (stripped.endswith("::") and not stripped.lstrip().startswith("..")):
            indent = len(line) - len(line.lstrip())
            j = i + 1
            while j < len(lines) and not lines[j].strip():
                j += 1
            block_indent = len(lines[j]) - len(lines[j].lstrip()) if j < len(lines) else 0
            if j < len(lines) and block_indent > indent:
                block: list[str] = []
                k = j
                while k < len(lines) and (
                    not lines[k].strip() or len(lines[k]) - len(lines[k].lstrip()) >= block_indent
                ):
                    block.append(lines[k][block_indent:])
                    k += 1
                while block and not block[-1].strip():
                    block.pop()
                pad = " " * indent
                if is_math:
                    inline = stripped.lstrip()[len(".. math::") :].strip()
                    if inline:
                        block.insert(0, inline)
                else:
                    head = stripped[:-2].rstrip()
                    if head.strip():
                        out.append(head + ":")
                lang = "text" if is_math or not any(b.startswith(">>>") for b in block) else "pycon"
                if not is_math and lang == "text" and _looks_like_python(block):
                    lang = "python"
                out.append("")
                out.append(f"{pad}```{lang}")
                out.extend(pad + b if b else "" for b in block)
                out.append(f"{pad}```")
                out.append("")
                i = k
                continue
        out.append(line)
        i += 1
    return "\n".join(out)


def _looks_like_python(block: list[str]) -> bool:
    code = "\n".join(block)
    if code.lstrip().startswith(("lstmlab ", "python ", "torchrun ", "$ ")):
        return False
    try:
        compile(code, "<docstring>", "exec")
    except SyntaxError:
        return False
    return True


class SphinxRoles(griffe.Extension):
    """Rewrite each docstring once the object tree is complete."""

    def on_object(self, *, obj: griffe.Object, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        if obj.docstring is None:
            return
        value = obj.docstring.value
        value = _literal_blocks(value)
        value = _roles(value, obj, loader.modules_collection)
        obj.docstring.value = value
