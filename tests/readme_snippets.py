"""The Python snippets of README.md, exactly as printed, for the tests that run them."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def python_snippet(containing: str) -> str:
    """The one ```python block of README.md that contains `containing`.

    Raises:
        AssertionError: no block, or more than one, contains it (the README changed shape).
    """
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.DOTALL)
    matching = [block for block in blocks if containing in block]
    assert len(matching) == 1, f"{len(matching)} README python blocks contain {containing!r}"
    return matching[0]
