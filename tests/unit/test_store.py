"""The store schema: one module owns it, and data/README.md shows exactly that schema."""

import subprocess
import sys
from pathlib import Path

from pcst_prep import store

ROOT = Path(__file__).resolve().parents[2]


def test_data_readme_shows_the_schema_of_the_store_module():
    readme = (ROOT / "data" / "README.md").read_text()

    assert store.schema_markdown() in readme, "regenerate with: python -m pcst_prep.store"


def test_store_module_imports_neither_numba_nor_dask():
    code = ("import sys, pcst_prep.store, pcst_prep.statistics; "
            "print(sorted(m for m in ('numba', 'dask') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert out.stdout.strip() == "[]"
