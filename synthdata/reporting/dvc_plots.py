"""``dvc plots diff`` on a machine without internet.

DVC's plots page loads Vega, Vega-Lite and Vega-Embed from a CDN, so on an air-gapped machine
its charts stay blank. This runs ``dvc plots diff`` with an HTML template that carries those
libraries inline (the bundle vl-convert ships), so the page draws offline; everything else —
which plots, their templates, the revisions and experiments compared — is DVC's.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from synthdata.atomic import write_text
from synthdata.errors import SynthdataError

PAGE = """<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
{refresh_tag}
<title>synthdata: DVC plots</title>
<script>
BUNDLE
</script>
<style>
body { font-family: sans-serif; margin: 1em 2em; }
table { border-spacing: 15px; }
</style>
</head>
<body>
{plot_divs}
</body>
</html>
"""
"""DVC's page with the libraries inline and without its ``{scripts}`` (the CDN's tags)."""


def offline_page() -> str:
    """The HTML template: Vega, Vega-Lite and Vega-Embed inline, ``vegaEmbed`` global as DVC's
    page calls it."""
    import vl_convert

    bundle = vl_convert.javascript_bundle("window.vegaEmbed = vegaEmbed;")
    if "</script" in bundle.lower():  # it could not stand inside a script element
        raise SynthdataError("vl-convert's Vega bundle holds '</script'; cannot inline it")
    return PAGE.replace("BUNDLE", bundle)


def plots_diff(revisions: list[str], out: Path, *, cwd: Path | None = None) -> Path:
    """``dvc plots diff REVISIONS -o OUT`` with :func:`offline_page` as its template; the page.

    Revisions are whatever DVC takes: commits, branches, tags, experiment names; none compares
    the workspace with ``HEAD``.
    """
    for revision in revisions:
        if revision.startswith("-"):
            raise SynthdataError(f"revision {revision!r}: a revision does not start with '-'")
    with tempfile.TemporaryDirectory(prefix="synthdata-plots-") as folder:
        template = write_text(Path(folder) / "page.html", offline_page())
        command = [sys.executable, "-m", "dvc", "plots", "diff", *revisions]
        command += ["--html-template", str(template), "-o", str(out)]
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        lines = [line for line in (done.stderr + done.stdout).splitlines() if line.strip()]
        raise SynthdataError(f"dvc plots diff failed: {lines[-1] if lines else f'exit {done.returncode}'}")
    page = (cwd or Path.cwd()) / out / "index.html"
    if not page.is_file():
        raise SynthdataError(f"dvc plots diff wrote no page at {out / 'index.html'}")
    return page
