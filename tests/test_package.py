"""The package as users meet it: importing is cheap and quiet, the public names resolve."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata

import journeyflow as jf

HEAVY_OR_OPTIONAL = ("matplotlib", "dask", "distributed", "pyarrow.dataset", "duckdb", "polars")


def _import_in_fresh_interpreter() -> dict[str, object]:
    code = (
        "import sys, json, io, contextlib\n"
        "buf = io.StringIO()\n"
        "with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):\n"
        "    import journeyflow\n"
        "print(json.dumps({'output': buf.getvalue(), 'modules': sorted(sys.modules)}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    result: dict[str, object] = json.loads(out.stdout)
    return result


def test_import_is_quiet_and_does_not_load_plotting_or_dask() -> None:
    result = _import_in_fresh_interpreter()
    assert result["output"] == ""
    modules = set(result["modules"])  # type: ignore[arg-type]
    loaded = [m for m in HEAVY_OR_OPTIONAL if m in modules]
    assert loaded == [], f"import journeyflow loaded {loaded}"


def test_version_matches_installed_metadata() -> None:
    assert jf.__version__ == metadata.version("journeyflow")
    parts = jf.__version__.split(".")
    assert len(parts) >= 3 and all(p.isdigit() for p in parts[:3])


def test_all_is_sorted_unique_and_resolvable() -> None:
    names = list(jf.__all__)
    assert len(names) == len(set(names))
    assert names == sorted(names)
    missing = [n for n in names if not hasattr(jf, n)]
    assert missing == []


def test_every_public_callable_has_a_docstring_with_an_example() -> None:
    """Functions and the classes users build themselves; returned result holders and
    exceptions document their attributes instead."""
    undocumented = []
    for name in jf.__all__:
        obj = getattr(jf, name)
        if not callable(obj) or name.endswith(("Result", "Summary")):
            continue
        if isinstance(obj, type) and issubclass(obj, (BaseException, Warning)):
            continue
        doc = obj.__doc__ or ""
        if "Examples" not in doc and "Example" not in doc:
            undocumented.append(name)
    assert undocumented == []


def test_exceptions_share_one_base_and_keep_builtin_bases() -> None:
    for name in ("SchemaError", "OptionError", "InputTypeError", "DataError", "ReadError",
                 "NotFittedError"):
        assert issubclass(getattr(jf, name), jf.JourneyflowError)
    assert issubclass(jf.SchemaError, KeyError)
    assert issubclass(jf.ReadError, OSError)
    for name in ("DataQualityWarning", "SparseChainWarning"):
        assert issubclass(getattr(jf, name), jf.JourneyflowWarning)
